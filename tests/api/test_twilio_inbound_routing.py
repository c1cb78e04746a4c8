"""Twilio's inbound SMS, signed the real way, routed by the number it was sent to;
HELP answered through the pipeline; error 21610 suppressing the recipient."""

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Suppression
from messaging.models import CommunicationLog, Dispatch, InboundReply, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.crm.factories import LeadFactory, OrganizationFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.messaging import assert_counters_match_logs
from tests.support.twilio import PUBLIC_URL, adapter_for
from tests.vendors.factories import VendorAccountFactory
from vendors.base import OutboundMessage
from vendors.registry import reset_adapters
from vendors.twilio import twilio_signature
from vendors.twilio_fake import TwilioFake

pytestmark = pytest.mark.django_db
INBOUND_URL = f"{PUBLIC_URL}/api/webhooks/twilio/inbound"
PERSON = "+12025550147"
NUMBER_A = "+15005550101"
NUMBER_B = "+15005550102"


@pytest.fixture
def fake(settings) -> Iterator[TwilioFake]:
    """The fake, the server configured as its account, and Twilio as the vendor."""
    fake = TwilioFake().start()
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_STATUS_CALLBACK_URL = PUBLIC_URL
    settings.VENDOR_DEFAULT = "twilio"
    reset_adapters()
    yield fake
    reset_adapters()
    fake.stop()


@pytest.fixture
def two_orgs(fake):
    """Two organizations with their own Twilio numbers (on the fake's account, so
    their messages go to the fake) and a lead at one phone."""
    orgs = []
    for number in (NUMBER_A, NUMBER_B):
        organization = OrganizationFactory(help_text="Help at example.com/help.")
        VendorAccountFactory(
            organization=organization,
            sender=number,
            account_id=fake.account_sid,
            secrets={"auth_token": fake.auth_token},
        )
        orgs.append(
            (organization, LeadFactory(organization=organization, phones=[PERSON]))
        )
    return orgs


def inbound(token: str, text: str, *, to: str, sid: str = "SM" + "2" * 32):
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": PERSON,
        "To": to,
        "Body": text,
    }
    signature = twilio_signature(token, INBOUND_URL, params)
    return APIClient().post(
        "/api/webhooks/twilio/inbound",
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def test_a_signed_stop_to_one_number_opts_out_in_its_organization_only(fake, two_orgs):
    (a, lead_a), (b, lead_b) = two_orgs

    response = inbound(fake.auth_token, "STOP", to=NUMBER_B)

    assert response.status_code == 200
    lead_a.refresh_from_db()
    lead_b.refresh_from_db()
    assert (lead_a.sms_opt_out, lead_b.sms_opt_out) == (False, True)
    assert list(Suppression.objects.values_list("organization", "reason")) == [
        (b.pk, "stop_keyword")
    ]


def test_a_signed_stop_to_an_unknown_number_is_stored_and_changes_nothing(
    fake, two_orgs
):
    (_, lead_a), (_, lead_b) = two_orgs

    response = inbound(fake.auth_token, "STOP", to="+15005550999")

    assert response.status_code == 200
    assert response.json()["ignored"] == 1
    assert not Suppression.objects.exists()
    assert InboundReply.objects.get().action == "unknown_recipient"


def test_help_is_answered_once_through_the_pipeline_with_the_organizations_text(
    fake, two_orgs
):
    # given the person texts HELP to A's number, and Twilio delivers it twice
    (a, lead_a), _ = two_orgs
    first = inbound(fake.auth_token, "help", to=NUMBER_A)
    again = inbound(fake.auth_token, "help", to=NUMBER_A)

    # when the send service sends the HELP answers' dispatch
    log = CommunicationLog.objects.get()
    outcome = logs_send_due(dispatch_id=log.dispatch_id)

    # then one answer went, by Twilio, with A's name and help text, transactional
    assert (first.status_code, again.json()["duplicates"]) == (200, 1)
    assert outcome.sent == 1
    [sent] = fake.sent
    assert sent.to == PERSON
    assert fake.requests_by_send_id == {log.send_id: 1}
    log.refresh_from_db()
    assert log.status == LogStatus.SENT
    assert log.lead_id == lead_a.pk
    assert log.body == f"{a.name}: Help at example.com/help. Reply STOP to opt out."
    dispatch = Dispatch.objects.get(pk=log.dispatch_id)
    assert dispatch.transactional and dispatch.organization_id == a.pk
    assert_counters_match_logs(dispatch)
    assert InboundReply.objects.get().action == "help"


def test_a_second_help_goes_through_the_same_transactional_dispatch(fake, two_orgs):
    inbound(fake.auth_token, "HELP", to=NUMBER_A, sid="SM" + "3" * 32)
    inbound(fake.auth_token, "INFO", to=NUMBER_A, sid="SM" + "4" * 32)

    assert CommunicationLog.objects.count() == 2
    assert CommunicationLog.objects.values("dispatch").distinct().count() == 1


def test_a_send_refused_with_21610_fails_for_good_and_suppresses_the_number(fake):
    # given a pending message to a number that replied STOP to our sender at Twilio
    fake.opted_out.add(PERSON)
    lead = LeadFactory(phones=[PERSON])
    dispatch = DispatchFactory(organization=lead.organization, audience=1, pending=1)
    log = CommunicationLogFactory(dispatch=dispatch, lead=lead, recipient=PERSON)

    # when it is sent
    logs_send_due(dispatch_id=dispatch.pk)

    # then it failed permanently and the number is suppressed in that organization
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "21610")
    assert list(
        Suppression.objects.values_list("organization", "channel", "address", "reason")
    ) == [(lead.organization_id, "sms", PERSON, "stop_keyword")]
    assert_counters_match_logs(dispatch)


def test_a_status_callback_with_21610_suppresses_the_number(fake):
    # given a message Twilio accepted
    [result] = adapter_for(fake).send_batch(
        [OutboundMessage("send-1", "sms", PERSON, "Hi")]
    )
    lead = LeadFactory(phones=[PERSON])
    dispatch = DispatchFactory(
        organization=lead.organization, pending=0, sent=1, audience=1
    )
    log = CommunicationLogFactory(
        dispatch=dispatch,
        lead=lead,
        recipient=PERSON,
        status=LogStatus.SENT,
        vendor="twilio",
        vendor_ref=result.vendor_ref,
        sent_at=timezone.now(),
        next_attempt_at=None,
    )

    # when its signed status callback says failed, 21610, and receipts are applied
    url, params, headers = fake.status_callback(
        fake.sent[0], "failed", error_code="21610"
    )
    response = APIClient().post(
        url.removeprefix(PUBLIC_URL),
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=headers["X-Twilio-Signature"],
    )
    receipts_process()

    # then the message failed and the number is suppressed in its organization
    assert response.status_code == 202
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "21610")
    assert list(Suppression.objects.values_list("organization", "reason")) == [
        (lead.organization_id, "stop_keyword")
    ]
    assert_counters_match_logs(dispatch)


def test_an_undelivered_receipt_with_another_code_suppresses_nothing(fake):
    [result] = adapter_for(fake).send_batch(
        [OutboundMessage("send-1", "sms", PERSON, "Hi")]
    )
    lead = LeadFactory(phones=[PERSON])
    dispatch = DispatchFactory(
        organization=lead.organization, pending=0, sent=1, audience=1
    )
    CommunicationLogFactory(
        dispatch=dispatch,
        lead=lead,
        recipient=PERSON,
        status=LogStatus.SENT,
        vendor="twilio",
        vendor_ref=result.vendor_ref,
        sent_at=timezone.now(),
        next_attempt_at=None,
    )
    url, params, headers = fake.status_callback(
        fake.sent[0], "undelivered", error_code="30003"
    )

    APIClient().post(
        url.removeprefix(PUBLIC_URL),
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=headers["X-Twilio-Signature"],
    )
    receipts_process()

    assert not Suppression.objects.exists()
