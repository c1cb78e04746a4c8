"""Vendor webhooks: signed receipts and inbound STOP/START; forged or replayed = 403."""

import json
import time
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.receipts import receipts_process
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.messaging import written_to
from vendors.base import InboundMessage, Receipt
from vendors.simulator import SimulatorAdapter
from vendors.simulator_callbacks import WEBHOOK_TOLERANCE_SECONDS
from vendors.simulator_store import MemoryStore

pytestmark = pytest.mark.django_db
RECEIPTS_URL = "/api/webhooks/simulator/receipts"
INBOUND_URL = "/api/webhooks/simulator/inbound"


@pytest.fixture
def vendor(settings) -> SimulatorAdapter:
    """Signs as the simulator the server knows (same secret)."""
    return SimulatorAdapter(
        store=MemoryStore(), webhook_secret=settings.SIMULATOR_WEBHOOK_SECRET
    )


@pytest.fixture
def sent_log(org):
    dispatch = DispatchFactory(organization=org, pending=0, sent=1, audience=1)
    return CommunicationLogFactory(
        dispatch=dispatch,
        status=LogStatus.SENT,
        vendor="simulator",
        vendor_ref="SIM-42",
        lead__organization=org,
    )


def delivered(ref: str = "SIM-42") -> Receipt:
    return Receipt(
        vendor_ref=ref,
        status="DELIVERED",
        error_code=None,
        occurred_at=datetime.now(UTC),
    )


def post(body: bytes, headers: dict, url: str = RECEIPTS_URL):
    extra = {f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()}
    return APIClient().post(url, body, content_type="application/json", **extra)


def test_a_signed_receipt_is_stored_and_applied(vendor, sent_log):
    body, headers = vendor.webhook_callback([delivered()])

    response = post(body, headers)
    receipts_process()

    assert response.status_code == 202
    assert response.json() == {"received": 1, "new": 1, "suppressed": 0}
    sent_log.refresh_from_db()
    assert sent_log.status == LogStatus.DELIVERED
    assert Dispatch.objects.get(pk=sent_log.dispatch_id).delivered == 1


def test_a_duplicate_receipt_is_harmless(vendor, sent_log):
    body, headers = vendor.webhook_callback([delivered()])
    post(body, headers)
    receipts_process()

    again = post(body, headers)
    receipts_process()

    assert again.status_code == 202
    assert again.json()["new"] == 0
    assert DeliveryReceipt.objects.count() == 1
    assert Dispatch.objects.get(pk=sent_log.dispatch_id).delivered == 1


def test_a_forged_signature_is_a_403_and_changes_nothing(sent_log):
    forger = SimulatorAdapter(store=MemoryStore(), webhook_secret="not-the-secret")
    body, headers = forger.webhook_callback([delivered()])

    response = post(body, headers)

    assert response.status_code == 403
    assert not DeliveryReceipt.objects.exists()


def test_a_tampered_body_is_a_403(vendor, sent_log):
    body, headers = vendor.webhook_callback([delivered()])

    response = post(body.replace(b"DELIVERED", b"UNDELIVERED"), headers)

    assert response.status_code == 403
    assert not DeliveryReceipt.objects.exists()


def test_a_replay_outside_the_window_is_a_403(vendor, sent_log):
    old = int(time.time()) - WEBHOOK_TOLERANCE_SECONDS - 60
    body, headers = vendor.webhook_callback([delivered()], timestamp=old)

    response = post(body, headers)

    assert response.status_code == 403
    assert not DeliveryReceipt.objects.exists()
    sent_log.refresh_from_db()
    assert sent_log.status == LogStatus.SENT


def test_a_missing_signature_is_a_403(sent_log):
    response = post(json.dumps({"receipts": []}).encode(), {})

    assert response.status_code == 403


@pytest.mark.parametrize("timestamp", ["9" * 5000, "\xb2"])
def test_a_timestamp_that_is_no_epoch_second_is_a_403_and_stores_nothing(
    vendor, timestamp
):
    # given a receipt whose timestamp has 5,000 digits, or is a superscript two
    body, headers = vendor.webhook_callback([delivered()])
    headers["X-Simulator-Timestamp"] = timestamp

    # when
    response = post(body, headers)

    # then
    assert response.status_code == 403
    assert not DeliveryReceipt.objects.exists()


def signed(vendor, payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    return body, {
        "X-Simulator-Timestamp": str(timestamp),
        "X-Simulator-Signature": vendor.sign(body, timestamp),
    }


@pytest.mark.parametrize(
    "receipt",
    [
        {"vendor_ref": "S" * 121, "status": "DELIVERED"},
        {"vendor_ref": "SIM-42", "status": "UNDELIVERED", "error_code": "e" * 65},
        {"vendor_ref": "SIM-42", "status": "DELIVERED", "note": "a\x00b"},
        {"vendor_ref": "SIM-\ud800", "status": "DELIVERED"},
        {
            "vendor_ref": "SIM-42",
            "status": "DELIVERED",
            "occurred_at": "9999-12-31T23:59:59-05:00",
        },
    ],
)
def test_a_signed_receipt_the_columns_cannot_hold_is_a_400_and_stores_nothing(
    vendor, receipt
):
    # given a well signed callback with a value too long, NUL, not text, or an
    # instant past year 9999 in UTC
    body, headers = signed(
        vendor, {"receipts": [{"occurred_at": "2025-01-01T00:00:00", **receipt}]}
    )

    # when
    response = post(body, headers)

    # then
    assert response.status_code == 400
    assert "body" in response.json()
    assert not DeliveryReceipt.objects.exists()


@pytest.mark.parametrize(
    ("sender", "text"), [("+1" + "2" * 300, "STOP"), ("+12025550147", "x" * 10_001)]
)
def test_a_signed_reply_longer_than_its_columns_is_a_400_and_changes_nothing(
    vendor, org, sender, text
):
    # given
    lead = LeadFactory(organization=org, phones=["+12025550147"])
    message = {
        "channel": "sms",
        "from": sender,
        "body": text,
        "received_at": "2025-01-01T00:00:00",
    }
    body, headers = signed(vendor, {"messages": [message]})

    # when
    response = post(body, headers, url=INBOUND_URL)

    # then
    assert response.status_code == 400
    lead.refresh_from_db()
    assert not lead.sms_opt_out


def test_a_signed_but_malformed_body_is_a_400(vendor):
    body = b'{"receipts": "nope"}'
    timestamp = int(time.time())
    headers = {
        "X-Simulator-Timestamp": str(timestamp),
        "X-Simulator-Signature": vendor.sign(body, timestamp),
    }

    response = post(body, headers)

    assert response.status_code == 400
    assert "body" in response.json()


def test_an_unknown_vendor_is_a_404(vendor):
    body, headers = vendor.webhook_callback([delivered()])

    response = post(body, headers, url="/api/webhooks/vendors.simulator/receipts")

    assert response.status_code == 404


def inbound(
    vendor,
    text: str,
    sender: str = "+12025550147",
    channel: str = "sms",
    message_id: str = "",
):
    message = InboundMessage(
        channel=channel,
        sender=sender,
        body=text,
        received_at=datetime.now(UTC),
        message_id=message_id,
    )
    body, headers = vendor.inbound_callback([message])
    return post(body, headers, url=INBOUND_URL)


def test_stop_opts_the_lead_out_and_skips_its_pending_messages(vendor, org):
    lead = LeadFactory(organization=org, phones=["+12025550147"])
    written_to(lead)
    dispatch = DispatchFactory(organization=org, audience=1, pending=1)
    pending = CommunicationLogFactory(
        dispatch=dispatch, lead=lead, recipient=lead.phone
    )

    response = inbound(vendor, "Stop")

    assert response.status_code == 200
    assert response.json()["opted_out"] == 1
    lead.refresh_from_db()
    assert lead.sms_opt_out and not lead.email_opt_out
    pending.refresh_from_db()
    assert pending.status == LogStatus.SKIPPED
    dispatch.refresh_from_db()
    assert (dispatch.pending, dispatch.skipped) == (0, 1)


def test_unsubscribe_by_email_opts_out_of_email_only(vendor, org):
    lead = LeadFactory(organization=org, emails=["ada@example.com"])
    written_to(lead, channel="email")

    inbound(vendor, "UNSUBSCRIBE", sender="Ada@Example.com", channel="email")

    lead.refresh_from_db()
    assert lead.email_opt_out and not lead.sms_opt_out


def test_a_replayed_inbound_message_is_applied_once(vendor, org):
    # given a STOP the vendor delivered with its message id
    lead = LeadFactory(organization=org, phones=["+12025550147"])
    written_to(lead)
    inbound(vendor, "STOP", message_id="SM123")

    # when the vendor delivers the same message again
    response = inbound(vendor, "STOP", message_id="SM123")

    # then it is recognised as a replay
    assert response.json()["duplicates"] == 1


def test_start_opts_back_in(vendor, org):
    lead = LeadFactory(
        organization=org,
        phones=["+12025550147"],
        sms_opt_out=True,
        sms_opt_out_source="keyword",
    )
    written_to(lead)

    response = inbound(vendor, "START")

    assert response.json()["opted_in"] == 1
    lead.refresh_from_db()
    assert not lead.sms_opt_out


def test_other_replies_change_nothing(vendor, org):
    lead = LeadFactory(organization=org, phones=["+12025550147"])

    response = inbound(vendor, "stop sending me coupons please")

    assert response.json()["ignored"] == 1
    lead.refresh_from_db()
    assert not lead.sms_opt_out


def test_a_forged_inbound_stop_is_a_403_and_changes_nothing(org):
    lead = LeadFactory(organization=org, phones=["+12025550147"])
    forger = SimulatorAdapter(store=MemoryStore(), webhook_secret="nope")

    response = inbound(forger, "STOP")

    assert response.status_code == 403
    lead.refresh_from_db()
    assert not lead.sms_opt_out
    assert CommunicationLog.objects.count() == 0
