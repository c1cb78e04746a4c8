"""Sending: atomic claims, one vendor call per batch, every outcome recorded exactly."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.sending import logs_claim, logs_record_results, send_due
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept, fail
from vendors.base import VendorUnavailable

pytestmark = pytest.mark.django_db


def test_accepted_messages_are_recorded_sent_with_their_vendor_ref():
    dispatch = DispatchFactory()
    logs = pending_logs(dispatch, 3)
    vendor = ScriptedVendor(accept)

    outcome = send_due(dispatch_id=dispatch.pk, adapter=vendor)

    assert (outcome.claimed, outcome.sent) == (3, 3)
    assert len(vendor.calls) == 1
    for log in logs:
        log.refresh_from_db()
        assert log.status == LogStatus.SENT
        assert log.vendor_ref == f"ref-{log.send_id}"
        assert log.attempts == 1
        assert log.cost == Decimal("0.0079")
        # neither due nor held any more: out of the sweeper's and sender's indexes
        assert (log.next_attempt_at, log.claimed_at) == (None, None)
    dispatch.refresh_from_db()
    assert (dispatch.sent, dispatch.pending, dispatch.cost) == (3, 0, Decimal("0.0237"))
    assert_counters_match_logs(dispatch)


def test_retryable_failure_returns_to_pending_after_a_backoff(settings):
    settings.MESSAGING_RETRY_BASE_SECONDS = 30
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    before = timezone.now()

    outcome = send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("rate_limited", retryable=True)),
    )

    log.refresh_from_db()
    assert (outcome.retrying, log.status, log.error_code) == (
        1,
        "pending",
        "rate_limited",
    )
    assert before + timedelta(seconds=15) <= log.next_attempt_at
    assert log.next_attempt_at <= timezone.now() + timedelta(seconds=30)
    assert_counters_match_logs(dispatch)


def test_a_log_not_yet_due_is_not_claimed(settings):
    dispatch = DispatchFactory()
    pending_logs(dispatch, 1)
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(fail("x", retryable=True)))

    again = send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))

    assert again.claimed == 0


def test_retryable_failure_on_the_last_attempt_is_final(settings):
    settings.MESSAGING_MAX_ATTEMPTS = 2
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    flaky = ScriptedVendor(fail("carrier_timeout", retryable=True))

    send_due(dispatch_id=dispatch.pk, adapter=flaky)
    CommunicationLog.objects.filter(pk=log.pk).update(next_attempt_at=timezone.now())
    send_due(dispatch_id=dispatch.pk, adapter=flaky)

    log.refresh_from_db()
    assert (log.status, log.attempts, log.error_code) == (
        "failed",
        2,
        "carrier_timeout",
    )
    assert_counters_match_logs(dispatch)


def test_permanent_failure_is_final_at_once_with_the_error_code():
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)

    send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("invalid_number", retryable=False)),
    )

    log.refresh_from_db()
    assert (log.status, log.error_code, log.attempts) == ("failed", "invalid_number", 1)
    dispatch.refresh_from_db()
    assert (dispatch.failed, dispatch.pending, dispatch.sent) == (1, 0, 0)


def test_vendor_outage_sends_the_whole_batch_back_to_wait():
    dispatch = DispatchFactory()
    logs = pending_logs(dispatch, 4)

    outcome = send_due(
        dispatch_id=dispatch.pk, adapter=ScriptedVendor(raises=VendorUnavailable("503"))
    )

    assert outcome.retrying == 4
    statuses = set(
        CommunicationLog.objects.filter(pk__in=[log.pk for log in logs]).values_list(
            "status", "error_code"
        )
    )
    assert statuses == {("pending", "vendor_unavailable")}


def test_a_paused_dispatch_sends_nothing():
    dispatch = DispatchFactory(status=Dispatch.Status.PAUSED)
    pending_logs(dispatch, 2)
    vendor = ScriptedVendor(accept)

    outcome = send_due(dispatch_id=dispatch.pk, adapter=vendor)

    assert (outcome.claimed, vendor.calls) == (0, [])


def test_a_claim_taken_over_by_another_worker_is_not_recorded_twice():
    dispatch = DispatchFactory()
    pending_logs(dispatch, 1)
    first = logs_claim(dispatch_id=dispatch.pk, limit=10, now=timezone.now())
    # The sweeper released it and a second worker claimed and recorded it.
    CommunicationLog.objects.update(status=LogStatus.PENDING)
    second = logs_claim(dispatch_id=dispatch.pk, limit=10, now=timezone.now())
    logs_record_results(
        dispatch_id=dispatch.pk,
        vendor="scripted",
        claimed=second,
        results=[accept(_message(log)) for log in second],
    )

    late = logs_record_results(
        dispatch_id=dispatch.pk,
        vendor="scripted",
        claimed=first,
        results=[accept(_message(log)) for log in first],
    )

    assert (late.sent, late.unrecorded) == (0, [first[0].id])
    assert_counters_match_logs(dispatch)


def _message(log):
    from vendors.base import OutboundMessage

    return OutboundMessage(
        send_id=log.send_id, channel=log.channel, to=log.recipient, body=log.body
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_get_the_same_log():
    dispatch = DispatchFactory()
    pending_logs(dispatch, 120)
    claims: list[list[int]] = []
    barrier = threading.Barrier(3)

    def claimer():
        barrier.wait()
        try:
            mine = []
            while batch := logs_claim(
                dispatch_id=dispatch.pk, limit=7, now=timezone.now()
            ):
                mine.extend(log.id for log in batch)
            claims.append(mine)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every_claim = [log_id for mine in claims for log_id in mine]
    assert len(every_claim) == len(set(every_claim)) == 120


def test_every_retry_of_a_batch_has_a_send_waiting_for_it(settings, monkeypatch):
    from messaging import tasks

    settings.MESSAGING_RETRY_BASE_SECONDS = 30
    dispatch = DispatchFactory()
    pending_logs(dispatch, 20)
    scheduled = []
    monkeypatch.setattr(
        tasks.send_batch,
        "apply_async",
        lambda args, countdown: scheduled.append(countdown),
    )
    outcome = send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("rate_limited", retryable=True)),
    )
    tasks.after_send(dispatch_id=dispatch.pk, outcome=outcome)

    # each retry waits its own jittered time: the last one due has a send too,
    # not only the first (the others would wait for beat's send_due)
    now = timezone.now()
    dues = [
        (due - now).total_seconds()
        for due in dispatch.logs.values_list("next_attempt_at", flat=True)
    ]
    assert outcome.retrying == 20
    assert len(scheduled) == 2
    assert min(scheduled) <= min(dues) + 0.1
    assert max(scheduled) >= max(dues)


@pytest.mark.parametrize(
    ("expected", "polls"),
    [(3, ["at once"]), (5, [])],
    ids=["the last messages", "more to come"],
)
def test_the_last_sends_of_a_dispatch_poll_for_receipts_at_once(
    monkeypatch, expected, polls
):
    from messaging import tasks

    # given: a dispatch of `expected` messages, 3 of them made; a receipt poll
    # from this process already scheduled, a second away
    dispatch = DispatchFactory()
    pending_logs(dispatch, 3)
    Dispatch.objects.filter(pk=dispatch.pk).update(expected_audience=expected)
    monkeypatch.setitem(tasks._next_poll, "at", time.monotonic() + 1.0)
    scheduled = []
    monkeypatch.setattr(
        tasks.poll_receipts,
        "apply_async",
        lambda countdown: scheduled.append(countdown),
    )

    # when: the 3 are sent
    outcome = send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))
    tasks.after_send(dispatch_id=dispatch.pk, outcome=outcome)

    # then: with nothing left to send, their receipts are polled for as soon as they
    # are due, not a second later; with more to come, the poll scheduled stands
    at_once = tasks._receipt_wait()
    assert ["at once" for countdown in scheduled if countdown == at_once] == polls
    assert len(scheduled) == len(polls)
