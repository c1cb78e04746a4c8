"""Twilio's callbacks: status callbacks and inbound SMS, signed over URL and params.

A missing, forged or tampered X-Twilio-Signature, or one replayed with other
parameters, is a 403 that changes nothing.
"""

from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.services import lifecycle
from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs, written_to
from tests.support.twilio import PUBLIC_URL, adapter_for
from vendors.base import OutboundMessage
from vendors.registry import reset_adapters
from vendors.twilio import twilio_signature
from vendors.twilio_fake import SentMessage, TwilioFake

pytestmark = pytest.mark.django_db
INBOUND_URL = f"{PUBLIC_URL}/api/webhooks/twilio/inbound"


@pytest.fixture
def fake(settings) -> Iterator[TwilioFake]:
    """The fake, and the server configured as its account (same auth token)."""
    fake = TwilioFake().start()
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_STATUS_CALLBACK_URL = PUBLIC_URL
    reset_adapters()
    yield fake
    reset_adapters()
    fake.stop()


@pytest.fixture
def sent(fake, org) -> tuple[SentMessage, CommunicationLog]:
    """A message the fake accepted, and our log of it as sent."""
    [result] = adapter_for(fake).send_batch(
        [OutboundMessage("send-1", "sms", "+12025550100", "Hi")]
    )
    dispatch = DispatchFactory(organization=org, pending=0, sent=1, audience=1)
    log = CommunicationLogFactory(
        dispatch=dispatch,
        status=LogStatus.SENT,
        vendor="twilio",
        vendor_ref=result.vendor_ref,
        lead__organization=org,
    )
    return fake.sent[0], log


def post(url: str, params: dict[str, str], headers: dict[str, str]):
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    extra = {f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()}
    return APIClient().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        **extra,
    )


def assert_unchanged(log: CommunicationLog) -> None:
    assert not DeliveryReceipt.objects.exists()
    log.refresh_from_db()
    assert log.status == LogStatus.SENT


def test_a_signed_delivered_callback_makes_the_sent_log_delivered(fake, sent):
    message, log = sent

    response = post(*fake.status_callback(message, "delivered"))
    receipts_process()

    assert response.status_code == 202
    assert response.json() == {"received": 1, "new": 1, "suppressed": 0}
    log.refresh_from_db()
    assert log.status == LogStatus.DELIVERED
    assert Dispatch.objects.get(pk=log.dispatch_id).delivered == 1


def test_an_undelivered_callback_fails_the_log_with_its_error_code(fake, sent):
    message, log = sent

    post(*fake.status_callback(message, "undelivered", error_code="30007"))
    receipts_process()

    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "30007")


@pytest.mark.parametrize("status", ["queued", "sending", "sent"])
def test_a_status_on_the_way_changes_nothing(fake, sent, status):
    message, log = sent

    response = post(*fake.status_callback(message, status))

    assert (response.status_code, response.json()["received"]) == (202, 0)
    assert_unchanged(log)


def test_a_forged_signature_is_a_403_and_changes_nothing(fake, sent):
    message, log = sent
    forger = TwilioFake(auth_token="0" * 32)

    response = post(*forger.status_callback(message, "delivered"))

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_missing_signature_is_a_403_and_changes_nothing(fake, sent):
    message, log = sent
    url, params, _ = fake.status_callback(message, "delivered")

    response = post(url, params, {})

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_tampered_parameter_is_a_403_and_changes_nothing(fake, sent):
    message, log = sent
    url, params, headers = fake.status_callback(message, "undelivered")

    response = post(url, {**params, "MessageStatus": "delivered"}, headers)

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_signature_replayed_with_another_url_is_a_403(fake, sent):
    message, log = sent
    url, params, headers = fake.status_callback(message, "delivered")

    response = post(url.replace("send-1", "send-2"), params, headers)

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_signature_replayed_with_another_message_is_a_403(fake, sent):
    message, log = sent
    url, params, headers = fake.status_callback(message, "delivered")
    other_log = CommunicationLogFactory(
        dispatch=log.dispatch,
        status=LogStatus.SENT,
        vendor="twilio",
        vendor_ref="SM" + "1" * 32,
        lead__organization=log.lead.organization,
    )

    response = post(url, {**params, "MessageSid": other_log.vendor_ref}, headers)

    assert response.status_code == 403
    other_log.refresh_from_db()
    assert other_log.status == LogStatus.SENT
    assert_unchanged(log)


def test_without_an_auth_token_no_callback_is_accepted(fake, sent, settings):
    message, log = sent
    settings.TWILIO_AUTH_TOKEN = ""
    reset_adapters()
    unsigned = TwilioFake(auth_token="")

    response = post(*unsigned.status_callback(message, "delivered"))

    assert response.status_code == 403
    assert_unchanged(log)


def inbound(token: str, text: str, sender: str = "+12025550147"):
    params = {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": text,
    }
    headers = {"X-Twilio-Signature": twilio_signature(token, INBOUND_URL, params)}
    return post(INBOUND_URL, params, headers)


def test_a_signed_inbound_stop_opts_the_lead_out(fake, org):
    lead = LeadFactory(organization=org, phones=["+12025550147"])
    written_to(lead)

    response = inbound(fake.auth_token, "STOP")

    assert response.status_code == 200
    assert response.json()["opted_out"] == 1
    lead.refresh_from_db()
    assert lead.sms_opt_out


def test_a_forged_inbound_stop_is_a_403_and_changes_nothing(fake, org):
    lead = LeadFactory(organization=org, phones=["+12025550147"])

    response = inbound("0" * 32, "STOP")

    assert response.status_code == 403
    lead.refresh_from_db()
    assert not lead.sms_opt_out


def test_a_signed_callback_without_a_message_sid_is_a_400(fake):
    params = {"MessageStatus": "delivered"}
    url = f"{PUBLIC_URL}/api/webhooks/twilio/receipts?send_id=send-1"
    headers = {"X-Twilio-Signature": twilio_signature(fake.auth_token, url, params)}

    response = post(url, params, headers)

    assert response.status_code == 400


def test_the_fake_counted_exactly_one_request_per_send_id(fake, sent):
    message, _ = sent

    post(*fake.status_callback(message, "delivered"))

    assert fake.requests_by_send_id == {"send-1": 1}


def test_a_campaign_sent_through_twilio_completes_with_delivered_logs(fake, settings):
    # given a campaign of three leads, expanded, with Twilio as the vendor
    settings.VENDOR_DEFAULT = "twilio"
    campaign = launched_and_chunked(3)
    expand_all(campaign)

    # when the send path sends its due messages and Twilio calls back delivered
    outcome = logs_send_due(dispatch_id=campaign.dispatch_id)
    answers = [
        post(*fake.status_callback(message, "delivered")) for message in fake.sent
    ]
    receipts_process()
    lifecycle.campaign_mark_completed(dispatch_id=campaign.dispatch_id)

    # then every message went once, each is delivered, and the campaign completed
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    assert outcome.sent == 3
    assert {answer.status_code for answer in answers} == {202}
    assert fake.requests_by_send_id == {log.send_id: 1 for log in logs}
    assert {log.status for log in logs} == {LogStatus.DELIVERED}
    assert {log.vendor for log in logs} == {"twilio"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert_counters_match_logs(campaign.dispatch)
