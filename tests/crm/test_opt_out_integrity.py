"""A STOP is never lost: not to the admin form, the API, an import or a retry."""

import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.models import Channel, Lead, OptOutSource
from crm.services import lead_import
from crm.services.consent import lead_opt_out
from crm.services.lead_import import upsert
from crm.services.leads import lead_update
from messaging.models import LogStatus
from messaging.services.recovery import logs_retry_failed
from messaging.services.sending import logs_send_due
from tests.crm.factories import LeadFactory
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, fail

pytestmark = pytest.mark.django_db


def stop(lead: Lead) -> None:
    """The lead texts STOP (what inbound does to the lead's row)."""
    lead_opt_out(
        lead_id=lead.pk, channel=Channel.SMS, source=OptOutSource.KEYWORD, reason="t"
    )


def form_data(lead: Lead) -> dict:
    """The lead form as the page showed it: every box unticked."""
    return {
        "organization": lead.organization_id,
        "name": "Renamed",
        "external_id": lead.external_id,
        "phones_text": "; ".join(lead.phones),
        "emails_text": "; ".join(lead.emails),
        "total_spend": str(lead.total_spend),
        "visits": str(lead.visits),
        "timezone": lead.timezone,
        "tags": "[]",
        "attributes": "{}",
        "logs-TOTAL_FORMS": "0",
        "logs-INITIAL_FORMS": "0",
    }


def test_admin_form_save_keeps_a_stop_received_while_the_form_was_open(
    admin_client,
):
    # given a marketer who opened the lead's page, then the lead texts STOP
    lead = LeadFactory()
    admin_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))
    stop(lead)

    # when the marketer saves the form as it was shown
    response = admin_client.post(
        reverse("admin:crm_lead_change", args=[lead.pk]), form_data(lead)
    )

    # then the edit is saved and the STOP stands
    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert lead.name == "Renamed"
    assert lead.sms_opt_out


def test_admin_lifts_an_opt_out_only_by_the_action_with_a_reason(admin_client):
    # given an opted-out lead
    lead = LeadFactory()
    stop(lead)
    url = reverse("admin:crm_lead_changelist")
    chosen = {"action": "lift_opt_out", ACTION_CHECKBOX_NAME: [lead.pk]}

    # when the action is asked without a reason, then with one
    asked = admin_client.post(url, {**chosen, "channel": "sms", "reason": ""})
    lead.refresh_from_db()
    still_out = lead.sms_opt_out
    admin_client.post(url, {**chosen, "channel": "sms", "reason": "Asked by phone"})

    # then only the second lifts it, and the reason is in the lead's history
    assert asked.status_code == 200 and still_out
    lead.refresh_from_db()
    assert not lead.sms_opt_out
    entry = LogEntry.objects.get(object_id=str(lead.pk))
    assert "Asked by phone" in entry.get_change_message()


def test_lead_update_cannot_clear_an_opt_out():
    # given an opted-out lead
    lead = LeadFactory()
    stop(lead)

    # when an update asks to clear it
    with pytest.raises(ValidationError) as caught:
        lead_update(lead=lead, sms_opt_out=False, name="B")

    # then it is refused by field and nothing is written
    assert "sms_opt_out" in caught.value.message_dict
    lead.refresh_from_db()
    assert lead.sms_opt_out and lead.name != "B"


def test_import_row_saying_no_keeps_a_stop_received_after_the_lead_was_read(
    monkeypatch, organization
):
    # given a lead that texts STOP just after the import has read it
    lead = LeadFactory(organization=organization, external_id="a1")
    read = upsert._existing_leads

    def read_then_stop(*args, **kwargs):
        found = read(*args, **kwargs)
        stop(lead)
        return found

    monkeypatch.setattr(upsert, "_existing_leads", read_then_stop)

    # when a row for the lead with sms_opt_out=no is imported
    report = lead_import.lead_import_csv(
        organization=organization,
        stream=io.StringIO("external_id,name,sms_opt_out\na1,Ann B,no\n"),
    )

    # then the row's other values are written and the STOP stands
    assert report.updated == 1
    lead.refresh_from_db()
    assert lead.name == "Ann B"
    assert lead.sms_opt_out


def test_retry_failed_skips_a_message_to_a_lead_opted_out_since_it_failed():
    # given two failed messages, one of whose leads then texts STOP
    dispatch = DispatchFactory()
    opted_out, still_in = pending_logs(dispatch, 2)
    logs_send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("carrier_timeout", retryable=False)),
    )
    stop(opted_out.lead)

    # when the failed messages are retried
    retried = logs_retry_failed(dispatch_ids=[dispatch.pk])

    # then only the other is sent again; the opted-out one ends skipped
    opted_out.refresh_from_db()
    still_in.refresh_from_db()
    assert retried == 1
    assert (opted_out.status, opted_out.skip_reason) == (
        LogStatus.SKIPPED,
        "opted_out",
    )
    assert still_in.status == LogStatus.PENDING
    assert_counters_match_logs(dispatch)
