"""The receipt timeout: a sent log whose receipt never comes is made final."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_finish_if_done,
)

# Sent logs moved to no_receipt per transaction by the receipt timeout, and at
# most per dispatch and run: 100,000 take 6 s on a busy 2-vCPU box.
RECEIPT_TIMEOUT_BATCH_SIZE = 2000
RECEIPT_TIMEOUT_PER_RUN = 100_000


def receipts_time_out(*, now: datetime, limit: int = RECEIPT_TIMEOUT_BATCH_SIZE) -> int:
    """Make final, as `no_receipt`, every sent log whose receipt is overdue.

    Overdue: sent longer ago than MESSAGING_RECEIPT_TIMEOUT_SECONDS. Only the
    dispatches whose counters say they await receipts, and older than the timeout,
    are read; each one's overdue logs are found in one read through the dispatch-led
    unique index (up to RECEIPT_TIMEOUT_PER_RUN; the rest on the next run), then
    moved `limit` a transaction. Each batch is locked SKIP LOCKED and moved only if
    still sent, so a receipt applied meanwhile wins and nothing is counted twice;
    a log skipped as locked is found again next run. Returns how many moved.
    """
    cutoff = now - timedelta(seconds=settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS)
    awaiting = Dispatch.objects.filter(
        created_at__lt=cutoff,
        sent__gt=F("delivered") + F("undelivered") + F("no_receipt"),
    ).values_list("pk", flat=True)
    moved = 0
    for dispatch_id in awaiting:
        overdue = list(
            CommunicationLog.objects.filter(
                dispatch_id=dispatch_id, status=LogStatus.SENT, sent_at__lt=cutoff
            ).values_list("pk", flat=True)[:RECEIPT_TIMEOUT_PER_RUN]
        )
        for start in range(0, len(overdue), limit):
            with transaction.atomic():
                ids = list(
                    CommunicationLog.objects.filter(
                        pk__in=overdue[start : start + limit], status=LogStatus.SENT
                    )
                    .order_by("pk")
                    .select_for_update(skip_locked=True)
                    .values_list("pk", flat=True)
                )
                batch = CommunicationLog.objects.filter(
                    pk__in=ids, status=LogStatus.SENT
                ).update(status=LogStatus.NO_RECEIPT, updated_at=now)
                dispatch_counters_add(dispatch_id=dispatch_id, no_receipt=batch)
            moved += batch
        if overdue:
            dispatch_finish_if_done(dispatch_id=dispatch_id)
    return moved
