"""What follows a send: a send for each retry when it is due, receipt polls.

Retries are data (`next_attempt_at`); a countdown here only saves them the wait for
beat's dispatcher (messaging.send_due). Receipt polls are paced per process; beat's
sweep polls too, so nothing depends on one of these messages being delivered.
"""

import time

from django.utils import timezone

from config.enqueue import enqueue
from messaging import selectors
from messaging.services.sending import SendOutcome
from vendors.registry import get_adapter

SEND_BATCH_TASK = "messaging.send_batch"
POLL_RECEIPTS_TASK = "messaging.poll_receipts"
# No countdown may outlast the broker's visibility timeout (Redis would deliver the
# message twice); later work waits as data and the beat dispatcher picks it up.
MAX_COUNTDOWN_SECONDS = 120
# A process polls for receipts at most this often while it sends: fewer, larger
# polls. 100,000 leads: 274 polls of ~360 receipts (docs/performance.md).
RECEIPT_POLL_EVERY_SECONDS = 1.0
# Past the vendor's receipt delay, so a poll finds the receipts it was made for.
RECEIPT_WAIT_MARGIN_SECONDS = 0.1


class PollPacer:
    """When this process may next schedule a receipt poll: at most one ahead."""

    def __init__(self) -> None:
        self.next_at = 0.0

    def soon(self) -> None:
        """Poll once receipts are due, unless this process already will."""
        now = time.monotonic()
        if now < self.next_at:
            return
        wait = max(receipt_wait(), RECEIPT_POLL_EVERY_SECONDS)
        self.next_at = now + wait
        enqueue(POLL_RECEIPTS_TASK, countdown=wait)

    def last(self) -> None:
        """Poll as soon as the last sends' receipts are due: the dispatch waits for
        them alone, and a poll already scheduled may be up to a second away."""
        wait = receipt_wait()
        self.next_at = max(self.next_at, time.monotonic() + wait)
        enqueue(POLL_RECEIPTS_TASK, countdown=wait)


receipt_polls = PollPacer()


def receipt_wait() -> float:
    """Seconds from a send until the vendor has its receipts ready, with a margin."""
    return get_adapter().receipt_delay + RECEIPT_WAIT_MARGIN_SECONDS


def sends_follow_up(*, dispatch_id: int, outcome: SendOutcome) -> None:
    """Schedule what any send calls for: a receipt poll, and sends for its retries.

    A send when the batch's first retry is due and one when its last is: each retry
    waits its own jittered time, and a send finds only those due by then.
    """
    if outcome.sent:
        if selectors.dispatch_left_to_send(dispatch_id=dispatch_id):
            receipt_polls.soon()
        else:
            receipt_polls.last()
    for due in sorted({outcome.next_due, outcome.last_due} - {None}):
        wait = (due - timezone.now()).total_seconds()
        if wait <= MAX_COUNTDOWN_SECONDS:
            enqueue(SEND_BATCH_TASK, dispatch_id, countdown=max(wait, 0) + 0.05)
