"""Messaging's entry points: what senders and messaging's own tasks call.

Once a message exists (a log), messaging owns it: its sends, the retries' sends,
the receipt polls and the finishing of its dispatch. Campaigns and automations call
the functions here and nothing of messaging's tasks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from config.enqueue import enqueue
from messaging import selectors
from messaging.services import dispatches, receipts, recovery, sending
from messaging.services.logs import NewLog, logs_create
from messaging.services.schedule import (
    POLL_RECEIPTS_TASK,
    SEND_BATCH_TASK,
    receipt_polls,
    sends_follow_up,
)

SEND_DUE_TASK = "messaging.send_due"
PROCESS_RECEIPTS_TASK = "messaging.process_receipts"


def messages_send(
    *, dispatch_id: int, channel: str, claimed: Sequence[tuple[int, NewLog]]
) -> sending.SendOutcome:
    """Send logs just created claimed (logs_create(claim=True)), their first attempt,
    and schedule what follows; with none to send, check whether the dispatch is done
    (every message skipped leaves no send or receipt to check it)."""
    outcome = sending.logs_send_claimed(
        dispatch_id=dispatch_id, channel=channel, claimed=claimed
    )
    sends_follow_up(dispatch_id=dispatch_id, outcome=outcome)
    if not claimed:
        dispatches.dispatch_finish_if_done(dispatch_id=dispatch_id)
    return outcome


def messages_queue(
    *, dispatch_id: int, channel: str, messages: Sequence[NewLog]
) -> int:
    """Create the logs that do not exist yet and have them sent after commit.

    Returns how many were new: a message whose dedupe key already exists in the
    dispatch (a doubled or overlapping run) is not created again.
    """
    created = logs_create(dispatch_id=dispatch_id, channel=channel, logs=messages)
    if created.pending:
        enqueue(SEND_BATCH_TASK, dispatch_id)
    return created.pending + created.skipped


def dispatch_send_batch(*, dispatch_id: int) -> sending.SendOutcome:
    """Send one batch of the dispatch's due logs and schedule what follows; a full
    batch suggests more is due now, so the next is sent without waiting."""
    outcome = sending.logs_send_due(dispatch_id=dispatch_id)
    sends_follow_up(dispatch_id=dispatch_id, outcome=outcome)
    if outcome.claimed == sending.SEND_BATCH_SIZE:
        enqueue(SEND_BATCH_TASK, dispatch_id)
    return outcome


def dispatches_send_due(*, now: datetime) -> int:
    """Enqueue a send for every batch of logs due (retries included); how many."""
    enqueued = 0
    for dispatch_id, due in selectors.dispatches_with_due_logs(now=now):
        for _ in range(-(-due // sending.SEND_BATCH_SIZE)):
            enqueue(SEND_BATCH_TASK, dispatch_id)
            enqueued += 1
    return enqueued


def sends_due_soon() -> None:
    """After commit, have every active dispatch's due logs sent (a resume, a rerun)."""
    enqueue(SEND_DUE_TASK)


def dispatch_finish_soon(*, dispatch_id: int) -> None:
    """After commit, check in its own task whether the dispatch has finished."""
    enqueue(dispatches.FINISH_DISPATCH_TASK, dispatch_id)


def receipts_collect() -> receipts.ReceiptOutcome:
    """Poll the vendor's receipts and apply them; poll again while more come."""
    outcome = receipts.receipts_poll()
    if outcome.stored >= receipts.RECEIPT_BATCH_SIZE:
        enqueue(POLL_RECEIPTS_TASK)
    elif outcome.stored or outcome.waiting:
        # Receipts trickle in after each send: look again shortly while they do.
        receipt_polls.soon()
    return outcome


def receipts_store_and_apply_soon(*, vendor: str, received: list) -> int:
    """Store receipts a webhook brought and, after commit, have a worker apply them.

    Stored first, so the vendor gets its answer at once; a repeated receipt is
    stored once (unique), so it is never counted twice. Returns how many were new.
    """
    new = receipts.receipts_store(vendor=vendor, receipts=received)
    if new:
        enqueue(PROCESS_RECEIPTS_TASK)
    return new


def receipts_apply_stored() -> receipts.ReceiptOutcome:
    """Apply a batch of receipts stored by webhooks; the next at once if it was full."""
    outcome = receipts.receipts_process()
    if outcome.processed == receipts.RECEIPT_BATCH_SIZE:
        enqueue(PROCESS_RECEIPTS_TASK)
    return outcome


@dataclass(frozen=True)
class SweepResult:
    released: int


def messaging_sweep(*, stuck_after: timedelta) -> SweepResult:
    """Release logs a dead worker left claimed (and send them), pick up receipts."""
    released = recovery.logs_release_stuck(older_than=stuck_after)
    if released:
        enqueue(SEND_DUE_TASK)
    enqueue(POLL_RECEIPTS_TASK)
    enqueue(PROCESS_RECEIPTS_TASK)
    return SweepResult(released=released)
