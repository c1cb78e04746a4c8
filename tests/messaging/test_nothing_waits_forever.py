"""Messages never wait for ever: receipt timeout, cancel of in-flight sends, a vendor
that raises, and early receipts that outlast the stuck-claim release."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.dispatches import (
    dispatch_cancel,
    dispatch_expect,
    dispatch_reconcile,
)
from messaging.services.receipts import (
    receipts_process,
    receipts_store,
    receipts_time_out,
)
from messaging.services.recovery import logs_release_stuck
from messaging.services.sending import (
    ClaimedLog,
    logs_claim,
    logs_record_results,
    send_due,
)
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept, fail
from vendors.base import OutboundMessage, Receipt

pytestmark = pytest.mark.django_db


def sent_dispatch(count: int, *, sent_ago: timedelta) -> Dispatch:
    """A dispatch of `count` logs, all made and sent `sent_ago`, none receipted."""
    dispatch = DispatchFactory()
    pending_logs(dispatch, count)
    dispatch_expect(dispatch_id=dispatch.pk, audience=count)
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))
    then = timezone.now() - sent_ago
    dispatch.logs.update(sent_at=then, created_at=then)
    Dispatch.objects.filter(pk=dispatch.pk).update(created_at=then)
    return dispatch


def test_a_message_without_receipt_past_the_timeout_ends_no_receipt(settings):
    # given three messages sent 73 hours ago with a 72-hour receipt timeout
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 72 * 3600
    dispatch = sent_dispatch(3, sent_ago=timedelta(hours=73))

    # when the sweeper applies the receipt timeout
    moved = receipts_time_out(now=timezone.now())

    # then each is final as no_receipt, counted, and the dispatch is complete
    assert moved == 3
    assert set(dispatch.logs.values_list("status", flat=True)) == {"no_receipt"}
    dispatch.refresh_from_db()
    assert (dispatch.sent, dispatch.no_receipt) == (3, 3)
    assert dispatch.status == Dispatch.Status.COMPLETED
    assert_counters_match_logs(dispatch)


def test_a_message_within_the_receipt_timeout_still_waits(settings):
    # given a message sent an hour ago with a 72-hour receipt timeout
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 72 * 3600
    dispatch = sent_dispatch(1, sent_ago=timedelta(hours=1))

    # when the sweeper applies the receipt timeout
    moved = receipts_time_out(now=timezone.now())

    # then it is still sent and the dispatch still open
    assert moved == 0
    assert dispatch.logs.get().status == LogStatus.SENT
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.ACTIVE


def test_the_receipt_timeout_goes_in_batches_and_counts_each_once(settings):
    # given five overdue messages
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 60
    dispatch = sent_dispatch(5, sent_ago=timedelta(minutes=5))

    # when the timeout is applied two at a time, then again
    first = receipts_time_out(now=timezone.now(), limit=2)
    again = receipts_time_out(now=timezone.now(), limit=2)

    # then all five moved once, and the counters say so
    assert (first, again) == (5, 0)
    assert_counters_match_logs(dispatch)


def test_a_receipt_after_the_timeout_changes_nothing(settings):
    # given a message that ended no_receipt
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 60
    dispatch = sent_dispatch(1, sent_ago=timedelta(minutes=5))
    receipts_time_out(now=timezone.now())
    log = dispatch.logs.get()

    # when its receipt comes at last
    late = Receipt(log.vendor_ref, "DELIVERED", None, timezone.now(), {})
    receipts_store(vendor="scripted", receipts=[late])
    receipts_process()

    # then the receipt is kept as already final and nothing is counted twice
    log.refresh_from_db()
    assert log.status == LogStatus.NO_RECEIPT
    assert DeliveryReceipt.objects.get().outcome == "already_final"
    assert_counters_match_logs(dispatch)


def test_reconcile_repairs_a_wrong_no_receipt_counter(settings):
    # given a no_receipt message whose counter was lost
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 60
    dispatch = sent_dispatch(2, sent_ago=timedelta(minutes=5))
    receipts_time_out(now=timezone.now())
    Dispatch.objects.filter(pk=dispatch.pk).update(no_receipt=0)

    # when the counters are reconciled
    found = dispatch_reconcile(dispatch_id=dispatch.pk, repair=True)

    # then the difference is named and repaired
    assert found.differences == {"no_receipt": (0, 2)}
    assert_counters_match_logs(dispatch)


def test_a_receipt_waits_for_a_claim_the_sweeper_releases_and_resends(settings):
    # given a log whose worker died after the vendor accepted it: its receipt came
    # at once, and the claim is released after the stuck delay
    settings.MESSAGING_STUCK_AFTER_SECONDS = 600
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    (claimed,) = logs_claim(dispatch_id=dispatch.pk, limit=1, now=timezone.now())
    early = Receipt(f"ref-{log.send_id}", "DELIVERED", None, timezone.now(), {})
    receipts_store(vendor="scripted", receipts=[early])
    stuck_for = timedelta(seconds=600 + 60 + 10)
    DeliveryReceipt.objects.update(received_at=timezone.now() - stuck_for)
    dispatch.logs.update(claimed_at=timezone.now() - stuck_for)

    # when receipts are processed while the claim is still held, then the claim is
    # released and sent again (the vendor answers with its first acceptance)
    receipts_process()
    logs_release_stuck(older_than=timedelta(seconds=600))
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))
    receipts_process()

    # then the receipt waited and delivered the message
    log.refresh_from_db()
    assert log.status == LogStatus.DELIVERED
    assert DeliveryReceipt.objects.get().outcome == "applied"
    assert_counters_match_logs(dispatch)


def test_a_retryable_failure_in_a_cancelled_dispatch_ends_cancelled():
    # given a message in flight when its dispatch is cancelled
    dispatch = DispatchFactory()
    pending_logs(dispatch, 2)
    claimed = logs_claim(dispatch_id=dispatch.pk, limit=2, now=timezone.now())
    dispatch_cancel(dispatch=dispatch)

    # when the vendor answers: one accepted, one retryable failure
    vendor = ScriptedVendor(fail("rate_limited", retryable=True))
    results = [accept(vendor_message(claimed[0]))] + vendor.send_batch(
        [vendor_message(claimed[1])]
    )
    logs_record_results(
        dispatch_id=dispatch.pk, vendor="scripted", claimed=claimed, results=results
    )

    # then the accepted one stays sent and the other is cancelled, not pending
    statuses = dict(dispatch.logs.values_list("pk", "status"))
    assert statuses == {claimed[0].id: "sent", claimed[1].id: "cancelled"}
    assert_counters_match_logs(dispatch)


def test_a_stuck_claim_in_a_cancelled_dispatch_is_released_as_cancelled():
    # given a claim a dead worker left in a dispatch cancelled since
    dispatch = DispatchFactory()
    pending_logs(dispatch, 1)
    logs_claim(dispatch_id=dispatch.pk, limit=1, now=timezone.now())
    dispatch_cancel(dispatch=dispatch)
    dispatch.logs.update(claimed_at=timezone.now() - timedelta(hours=1))

    # when the sweeper releases stuck claims
    logs_release_stuck(older_than=timedelta(minutes=10))

    # then the message is cancelled, not pending where nothing would send it
    assert dispatch.logs.get().status == LogStatus.CANCELLED
    assert_counters_match_logs(dispatch)


def vendor_message(claimed: ClaimedLog) -> OutboundMessage:
    return OutboundMessage(
        send_id=claimed.send_id,
        channel=claimed.channel,
        to=claimed.recipient,
        body=claimed.body,
        subject=claimed.subject,
    )


class Broken(Exception):
    """A vendor adapter's bug, its message naming a recipient."""


def test_a_vendor_that_raises_uses_up_the_attempts_and_fails(settings, caplog):
    # given a vendor whose call raises an unexpected error naming the recipient
    settings.MESSAGING_MAX_ATTEMPTS = 3
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    vendor = ScriptedVendor(raises=Broken(f"cannot send to {log.recipient}"))

    # when it is sent as often as it comes due
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        CommunicationLog.objects.filter(pk=log.pk, status=LogStatus.PENDING).update(
            next_attempt_at=timezone.now()
        )
        send_due(dispatch_id=dispatch.pk, adapter=vendor)

    # then each call was an attempt, and after the last it failed with a code
    log.refresh_from_db()
    assert (log.status, log.attempts, log.error_code) == ("failed", 3, "vendor_error")
    assert len(vendor.calls) == 3
    assert_counters_match_logs(dispatch)
    # and the error was logged without the recipient
    assert "Broken" in caplog.text
    assert log.recipient not in caplog.text
