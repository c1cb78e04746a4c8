"""Sending rules: a suppressed address is never messaged, whether the message is
created after the suppression or was waiting (a retry, a rerun, a resumed
campaign) when it came."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import AutomationDispatch
from automations.selectors import reminders_due
from automations.services.reminders import reminders_send
from campaigns.services import lifecycle
from config.celery import app as celery_app
from crm.models import Organization
from crm.services.suppressions import address_suppress
from messaging.models import CommunicationLog, LogStatus, OwnDispatch
from messaging.services.dispatches import FINISH_DISPATCH_TASK, dispatch_finish_if_done
from messaging.services.logs import NewLog, logs_create
from messaging.services.recovery import logs_retry_failed
from messaging.services.sending import logs_send_due
from tests.automations.factories import AppointmentFactory
from tests.crm.factories import LeadFactory
from tests.messaging.factories import DispatchFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept, fail

pytestmark = pytest.mark.django_db

NUMBER = "+12025550199"


def sent_to(vendor: ScriptedVendor) -> set[str]:
    return {message.to for call in vendor.calls for message in call}


def test_a_lead_imported_later_with_a_suppressed_number_is_skipped_at_creation():
    campaign = launched_and_chunked(3)
    organization = campaign.organization
    # Written as a person would type it: the list holds it normalized.
    address_suppress(
        organization_id=organization.pk,
        channel="sms",
        address="(202) 555-0199",
        reason="stop_keyword",
    )
    newcomer = campaign.organization.leads.first()
    newcomer.phone, newcomer.phones = NUMBER, [NUMBER]
    newcomer.save()

    expand_all(campaign)
    vendor = ScriptedVendor(accept)
    logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)

    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id, lead=newcomer)
    assert (log.status, log.skip_reason) == (LogStatus.SKIPPED, "suppressed")
    assert NUMBER not in sent_to(vendor)
    assert len(sent_to(vendor)) == 2
    assert_counters_match_logs(campaign.dispatch)


def test_a_suppressed_email_is_matched_whatever_its_case():
    campaign = launched_and_chunked(2, channel="email", subject="Hi")
    lead = campaign.organization.leads.first()
    lead.email, lead.emails = "Jane.Doe@Example.com", ["Jane.Doe@Example.com"]
    lead.save()
    address_suppress(
        organization_id=campaign.organization_id,
        channel="email",
        address="jane.doe@example.com",
        reason="unsubscribe_link",
    )

    expand_all(campaign)

    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id, lead=lead)
    assert log.skip_reason == "suppressed"


def test_a_suppression_in_another_organization_or_channel_does_not_skip():
    campaign = launched_and_chunked(1)
    lead = campaign.organization.leads.get()
    other = LeadFactory().organization
    address_suppress(
        organization_id=other.pk, channel="sms", address=lead.phone, reason="manual"
    )
    address_suppress(
        organization_id=campaign.organization_id,
        channel="email",
        address=lead.email,
        reason="manual",
    )

    expand_all(campaign)

    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    assert log.status == LogStatus.PENDING


def test_a_reminder_to_a_suppressed_number_is_skipped(time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC), tick=False)
    appointment = AppointmentFactory(starts_at=timezone.now() + dt.timedelta(hours=2))
    address_suppress(
        organization_id=appointment.organization_id,
        channel="sms",
        address=appointment.lead.phone,
        reason="stop_keyword",
    )

    for org, jobs in reminders_due(now=timezone.now()).items():
        reminders_send(org_id=org, jobs=jobs)

    dispatch = AutomationDispatch.objects.get(
        organization=appointment.organization_id
    ).dispatch
    log = dispatch.logs.get()
    assert (log.status, log.skip_reason) == (LogStatus.SKIPPED, "suppressed")
    assert_counters_match_logs(dispatch)


def test_a_retry_to_an_address_suppressed_meanwhile_is_skipped_never_sent():
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    logs_send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("carrier_timeout", retryable=True)),
    )
    address_suppress(
        organization_id=dispatch.organization_id,
        channel="sms",
        address=log.recipient,
        reason="stop_keyword",
    )
    CommunicationLog.objects.filter(pk=log.pk).update(next_attempt_at=timezone.now())

    vendor = ScriptedVendor(accept)
    outcome = logs_send_due(dispatch_id=dispatch.pk, adapter=vendor)

    log.refresh_from_db()
    assert (log.status, log.skip_reason) == (LogStatus.SKIPPED, "suppressed")
    assert outcome.claimed == 0 and vendor.calls == []
    assert_counters_match_logs(dispatch)


def test_retrying_failed_messages_skips_an_address_suppressed_meanwhile():
    dispatch = DispatchFactory()
    suppressed, other = pending_logs(dispatch, 2)
    logs_send_due(
        dispatch_id=dispatch.pk, adapter=ScriptedVendor(fail("spam", retryable=False))
    )
    address_suppress(
        organization_id=dispatch.organization_id,
        channel="sms",
        address=suppressed.recipient,
        reason="complaint",
    )

    assert logs_retry_failed(dispatch_ids=[dispatch.pk]) == 2
    vendor = ScriptedVendor(accept)
    logs_send_due(dispatch_id=dispatch.pk, adapter=vendor)

    suppressed.refresh_from_db()
    assert (suppressed.status, suppressed.skip_reason) == ("skipped", "suppressed")
    assert sent_to(vendor) == {other.recipient}
    assert_counters_match_logs(dispatch)


def test_a_resumed_campaign_skips_an_address_suppressed_while_it_was_paused():
    campaign = launched_and_chunked(2)
    expand_all(campaign)
    lifecycle.campaign_pause(campaign_id=campaign.pk)
    first, second = CommunicationLog.objects.filter(
        dispatch=campaign.dispatch_id
    ).order_by("pk")
    address_suppress(
        organization_id=campaign.organization_id,
        channel="sms",
        address=first.recipient,
        reason="manual",
    )

    lifecycle.campaign_resume(campaign_id=campaign.pk)
    vendor = ScriptedVendor(accept)
    logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)

    first.refresh_from_db()
    assert first.skip_reason == "suppressed"
    assert sent_to(vendor) == {second.recipient}
    assert_counters_match_logs(campaign.dispatch)


def test_a_lead_opted_out_after_its_message_was_created_is_not_sent():
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    log.lead.sms_opt_out = True
    log.lead.save(update_fields=["sms_opt_out"])

    vendor = ScriptedVendor(accept)
    logs_send_due(dispatch_id=dispatch.pk, adapter=vendor)

    log.refresh_from_db()
    assert (log.status, log.skip_reason) == (LogStatus.SKIPPED, "opted_out")
    assert vendor.calls == []
    assert_counters_match_logs(dispatch)


def test_a_help_answer_goes_to_a_suppressed_number_even_at_night(time_machine):
    # given a number that said STOP, then HELP, at 03:00 in the organization's zone
    time_machine.move_to(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC), tick=False)
    dispatch = DispatchFactory(transactional=True)
    Organization.objects.filter(pk=dispatch.organization_id).update(
        transactional_night_start=dt.time(22), transactional_night_end=dt.time(7)
    )
    OwnDispatch.objects.create(
        organization=dispatch.organization,
        kind=OwnDispatch.Kind.HELP_REPLY,
        channel="sms",
        dispatch=dispatch,
    )
    address_suppress(
        organization_id=dispatch.organization_id,
        channel="sms",
        address=NUMBER,
        reason="stop_keyword",
    )

    # when its HELP answer is queued and sent
    logs_create(
        dispatch_id=dispatch.pk,
        channel="sms",
        logs=[NewLog(None, "help-1", "send-help-1", NUMBER, "Acme: Reply STOP")],
    )
    vendor = ScriptedVendor(accept)
    logs_send_due(dispatch_id=dispatch.pk, adapter=vendor)

    # then it goes out at once: carriers require a HELP be answered
    assert sent_to(vendor) == {NUMBER}


def test_a_campaign_whose_last_message_is_skipped_at_claim_completes(
    monkeypatch, django_capture_on_commit_callbacks
):
    # given a campaign of one message whose address is suppressed after expansion
    campaign = launched_and_chunked(1)
    expand_all(campaign)
    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    address_suppress(
        organization_id=campaign.organization_id,
        channel="sms",
        address=log.recipient,
        reason="manual",
    )
    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=(), **_: sent.append((name, args))
    )

    # when its send finds it suppressed
    with django_capture_on_commit_callbacks(execute=True):
        logs_send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor())

    # then the dispatch is checked for its end, and found complete
    assert (FINISH_DISPATCH_TASK, [campaign.dispatch_id]) in sent
    assert dispatch_finish_if_done(dispatch_id=campaign.dispatch_id)
