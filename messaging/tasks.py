"""Thin Celery tasks over the messaging services: send, receipts, recovery."""

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from messaging import selectors
from messaging.services import dispatches, receipts, recovery, sending
from vendors.base import VendorUnavailable

# Errors worth trying the task again for: the database or the vendor was briefly
# unreachable. Anything else is a bug or bad data and fails loudly.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, VendorUnavailable)
RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
    "ignore_result": True,
}
# No countdown may outlast the broker's visibility timeout (Redis would deliver the
# message twice); later work waits as data and the beat dispatcher picks it up.
MAX_COUNTDOWN_SECONDS = 120


@shared_task(name="messaging.send_batch", **RELIABLE)
def send_batch(dispatch_id: int) -> dict:
    outcome = sending.send_due(dispatch_id=dispatch_id)
    after_send(dispatch_id=dispatch_id, outcome=outcome)
    if outcome.claimed == sending.SEND_BATCH_SIZE:
        # A full batch suggests more is due now: keep draining without waiting for
        # the dispatcher.
        send_batch.delay(dispatch_id)
    return {"claimed": outcome.claimed, "sent": outcome.sent}


def after_send(*, dispatch_id: int, outcome: sending.SendOutcome) -> None:
    """What follows any send: look for receipts soon, send retries when due.

    A send when the batch's first retry is due, and one when its last is: each
    retry waits its own jittered time, and the first send finds only those due by
    then. With one send, the others waited for beat's send_due (10 s; in the
    benchmark, whose stand-in runs every 2 s, one run in three ended 2.6 s late).
    """
    if outcome.sent:
        if selectors.dispatch_left_to_send(dispatch_id=dispatch_id):
            receipts_poll_soon()
        else:
            receipts_poll_last()
    for due in sorted({outcome.next_due, outcome.last_due} - {None}):
        wait = (due - timezone.now()).total_seconds()
        if wait <= MAX_COUNTDOWN_SECONDS:
            send_batch.apply_async((dispatch_id,), countdown=max(wait, 0) + 0.05)


# A process polls for receipts at most this often while it sends: fewer, larger
# polls (up to RECEIPT_BATCH_SIZE receipts, then at once again). Measured on
# 100,000 leads: 274 polls of ~360 receipts every 0.3 s.
RECEIPT_POLL_EVERY_SECONDS = 1.0
# When this process may next schedule a receipt poll (time.monotonic()).
_next_poll = {"at": 0.0}


def receipts_poll_soon() -> None:
    """Poll for receipts once they are due, unless this process already will.

    Every send used to schedule its own poll, and every poll that found receipts
    its successor, so polls multiplied with the sends: 994 polls for 100,000 leads,
    each re-reading the queue. Now each process keeps at most one poll ahead; beat's
    sweep polls too, so nothing depends on this one being delivered.
    """
    now = time.monotonic()
    if now < _next_poll["at"]:
        return
    wait = max(_receipt_wait(), RECEIPT_POLL_EVERY_SECONDS)
    _next_poll["at"] = now + wait
    poll_receipts.apply_async(countdown=wait)


def receipts_poll_last() -> None:
    """Poll as soon as the last sends' receipts are due: the dispatch waits for them
    alone, and a poll already scheduled here may be up to a second away."""
    wait = _receipt_wait()
    _next_poll["at"] = max(_next_poll["at"], time.monotonic() + wait)
    poll_receipts.apply_async(countdown=wait)


@shared_task(name="messaging.poll_receipts", **RELIABLE)
def poll_receipts() -> dict:
    outcome = receipts.receipts_poll()
    if outcome.stored >= receipts.RECEIPT_BATCH_SIZE:
        # A full batch: more are ready now.
        poll_receipts.delay()
    elif outcome.stored or outcome.waiting:
        # Receipts trickle in after each send: look again shortly while they do.
        receipts_poll_soon()
    return {"stored": outcome.stored, "processed": outcome.processed}


@shared_task(name="messaging.process_receipts", **RELIABLE)
def process_receipts() -> dict:
    """Apply receipts stored by webhooks."""
    outcome = receipts.receipts_process()
    if outcome.processed == receipts.RECEIPT_BATCH_SIZE:
        process_receipts.delay()
    return {"processed": outcome.processed}


@shared_task(name="messaging.finish_dispatch", **RELIABLE)
def finish_dispatch(dispatch_id: int) -> bool:
    return dispatches.dispatch_finish_if_done(dispatch_id=dispatch_id)


@shared_task(name="messaging.send_due", **RELIABLE)
def send_due() -> int:
    """Beat: enqueue a send for every batch of logs that is due (retries included)."""
    enqueued = 0
    for dispatch_id, due in selectors.dispatches_with_due_logs(now=timezone.now()):
        for _ in range(-(-due // sending.SEND_BATCH_SIZE)):
            send_batch.delay(dispatch_id)
            enqueued += 1
    return enqueued


@shared_task(name="messaging.sweep", **RELIABLE)
def sweep() -> dict:
    """Beat: release logs a dead worker left claimed, then pick up receipts."""
    released = recovery.logs_release_stuck(
        older_than=timedelta(seconds=settings.MESSAGING_STUCK_AFTER_SECONDS)
    )
    if released:
        send_due.delay()
    poll_receipts.delay()
    process_receipts.delay()
    return {"released": released}


def _receipt_wait() -> float:
    return settings.SIMULATOR_RECEIPT_DELAY_MS / 1000 + 0.1
