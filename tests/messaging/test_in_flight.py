"""Messages in flight to a vendor with no idempotency key are never sent twice.

A worker that dies between a Twilio request and its record leaves the log claimed;
the sweeper asks Twilio (the wire fake) before anything is sent again.
"""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.recovery import logs_release_stuck
from messaging.services.sending import logs_claim, logs_send_due
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.twilio import adapter_for
from vendors.base import IN_DOUBT, OutboundMessage
from vendors.twilio_fake import TwilioFake

pytestmark = pytest.mark.django_db

LEASE = timedelta(minutes=10)


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    fake = TwilioFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def dispatch() -> Dispatch:
    dispatch = DispatchFactory(channel="sms")
    logs = pending_logs(dispatch, 3)
    for number, log in enumerate(logs):
        log.recipient = f"+1202555{number:04d}"
        log.save(update_fields=["recipient"])
    return dispatch


def claim_and_die(dispatch, adapter, *, sent: int) -> list[CommunicationLog]:
    """Claim every due log, send the first `sent` of them, then record nothing (the
    worker dies); the claims are older than the lease."""
    claimed = logs_claim(dispatch_id=dispatch.pk, limit=10, now=timezone.now())
    adapter.send_batch(
        [
            OutboundMessage(log.send_id, "sms", log.recipient, log.body)
            for log in claimed[:sent]
        ]
    )
    dispatch.logs.update(claimed_at=timezone.now() - LEASE - timedelta(seconds=1))
    return list(dispatch.logs.order_by("pk"))


def sweep(adapter) -> int:
    return logs_release_stuck(older_than=LEASE, adapter_for=lambda _: adapter)


def test_a_message_twilio_took_before_the_worker_died_is_recorded_sent(fake, dispatch):
    adapter = adapter_for(fake)
    claim_and_die(dispatch, adapter, sent=3)

    sweep(adapter)
    logs_send_due(dispatch_id=dispatch.pk, adapter=adapter)

    by_send_id = {sent.send_id: sent.sid for sent in fake.sent}
    logs = dispatch.logs.all()
    assert {log.status for log in logs} == {LogStatus.SENT}
    assert {log.send_id: log.vendor_ref for log in logs} == by_send_id
    assert set(fake.requests_by_send_id.values()) == {1}
    assert fake.duplicate_sends == 0
    assert_counters_match_logs(dispatch)


def test_a_message_twilio_never_took_is_sent_again_once(fake, dispatch, settings):
    settings.MESSAGING_RETRY_BASE_SECONDS = 0
    settings.MESSAGING_RETRY_MAX_SECONDS = 0
    adapter = adapter_for(fake)
    logs = claim_and_die(dispatch, adapter, sent=1)

    sweep(adapter)
    logs_send_due(dispatch_id=dispatch.pk, adapter=adapter)

    statuses = dict(dispatch.logs.values_list("pk", "status"))
    assert statuses == {log.pk: LogStatus.SENT for log in logs}
    assert fake.requests_by_send_id == {log.send_id: 1 for log in logs}
    assert fake.duplicate_sends == 0
    assert_counters_match_logs(dispatch)


def test_a_message_twilio_cannot_tell_apart_is_unknown_and_never_resent(fake, dispatch):
    adapter = adapter_for(fake)
    [first, *_] = claim_and_die(dispatch, adapter, sent=1)
    # A message we did not record, to the same number with the same words.
    adapter.send_batch(
        [OutboundMessage("elsewhere", "sms", first.recipient, first.body)]
    )

    sweep(adapter)
    logs_send_due(dispatch_id=dispatch.pk, adapter=adapter)

    first.refresh_from_db()
    assert first.status == LogStatus.UNKNOWN
    assert fake.requests_by_send_id[first.send_id] == 1
    dispatch.refresh_from_db()
    assert dispatch.unknown == 1
    assert_counters_match_logs(dispatch)


def test_while_twilio_cannot_be_asked_the_message_waits_then_is_unknown(fake, dispatch):
    adapter = adapter_for(fake)
    claim_and_die(dispatch, adapter, sent=1)
    fake.stop()

    assert sweep(adapter) == 0
    assert set(dispatch.logs.values_list("status", flat=True)) == {LogStatus.PROCESSING}

    dispatch.logs.update(claimed_at=timezone.now() - LEASE - timedelta(hours=2))
    assert sweep(adapter) == 3

    assert set(dispatch.logs.values_list("status", flat=True)) == {LogStatus.UNKNOWN}
    assert_counters_match_logs(dispatch)


def test_unknown_messages_let_their_dispatch_complete(fake, dispatch):
    Dispatch.objects.filter(pk=dispatch.pk).update(expected_audience=3)
    adapter = adapter_for(fake)
    claim_and_die(dispatch, adapter, sent=0)
    fake.stop()
    dispatch.logs.update(claimed_at=timezone.now() - LEASE - timedelta(hours=2))

    sweep(adapter)

    dispatch.refresh_from_db()
    assert (dispatch.status, dispatch.unknown, dispatch.pending) == (
        Dispatch.Status.COMPLETED,
        3,
        0,
    )


def test_a_request_in_doubt_leaves_its_message_in_flight_not_pending(fake, dispatch):
    fake.latency_ms = 400
    adapter = adapter_for(fake, timeout=0.1)

    outcome = logs_send_due(dispatch_id=dispatch.pk, adapter=adapter)

    assert (outcome.sent, outcome.retrying, outcome.failed) == (0, 0, 0)
    assert set(dispatch.logs.values_list("status", "error_code")) == {
        (LogStatus.PROCESSING, "")
    }
    assert IN_DOUBT not in set(dispatch.logs.values_list("error_code", flat=True))
    assert_counters_match_logs(dispatch)
