"""Retention: final messages older than a cutoff, and their receipts, are deleted.

In small batches, each its own short transaction, so no lock is held for long and the
pipeline goes on meanwhile. What the deleted messages counted is kept per dispatch
(RetiredCounts), so counters still reconcile and campaigns keep their figures.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F

from messaging.models import CommunicationLog, DeliveryReceipt, LogStatus, RetiredCounts
from messaging.services.dispatches import log_counters

FINAL = (
    LogStatus.DELIVERED,
    LogStatus.FAILED,
    LogStatus.SKIPPED,
    LogStatus.CANCELLED,
    LogStatus.NO_RECEIPT,
    LogStatus.UNKNOWN,
)
# Rows a transaction: each batch's locks last milliseconds.
PURGE_BATCH = 1000
RETIRED_FIELDS = [
    field.name for field in RetiredCounts._meta.fields if field.name != "dispatch"
]


@dataclass
class Purged:
    logs: int = 0
    receipts: int = 0


def messages_purge(
    *, before: datetime, max_logs: int, batch_size: int = PURGE_BATCH
) -> Purged:
    """Delete final messages whose last change is older than `before`, with their
    receipts, and receipts that never matched a message, older too.

    Messages are walked in id order, which is the order they were created in: the
    walk ends at the first batch reaching a message created at `before` or later.
    A message not final yet is left for a later run.
    """
    purged = Purged()
    after_pk = 0
    while purged.logs < max_logs:
        rows = list(
            CommunicationLog.objects.filter(pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", "created_at", "updated_at", "status")[:batch_size]
        )
        if not rows:
            break
        doomed = [
            pk
            for pk, _, updated_at, status in rows
            if status in FINAL and updated_at < before
        ]
        if doomed:
            logs, receipts = _purge_logs(doomed, before=before)
            purged.logs += logs
            purged.receipts += receipts
        after_pk, created_at = rows[-1][0], rows[-1][1]
        if created_at >= before:
            break
    purged.receipts += _purge_unmatched_receipts(before=before, batch_size=batch_size)
    return purged


@transaction.atomic
def _purge_logs(ids: list[int], *, before: datetime) -> tuple[int, int]:
    """Retire one batch: count it into its dispatches' RetiredCounts, then delete
    its receipts and itself. Rows are re-read under lock: a rerun may have made a
    failed message pending again meanwhile."""
    locked = list(
        CommunicationLog.objects.select_for_update()
        .filter(pk__in=ids, status__in=FINAL, updated_at__lt=before)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not locked:
        return 0, 0
    counters = log_counters()
    per_dispatch = (
        CommunicationLog.objects.filter(pk__in=locked)
        .order_by()
        .values("dispatch_id")
        .annotate(**{name: counters[name] for name in RETIRED_FIELDS})
    )
    for row in per_dispatch:
        dispatch_id = row.pop("dispatch_id")
        RetiredCounts.objects.get_or_create(dispatch_id=dispatch_id)
        RetiredCounts.objects.filter(dispatch_id=dispatch_id).update(
            **{name: F(name) + (value or 0) for name, value in row.items()}
        )
    receipts, _ = DeliveryReceipt.objects.filter(log_id__in=locked).delete()
    logs, _ = CommunicationLog.objects.filter(pk__in=locked).delete()
    return logs, receipts


def _purge_unmatched_receipts(*, before: datetime, batch_size: int) -> int:
    """Receipts that never found their message, received before `before`: walked
    in id order, the order they arrived in, like the messages."""
    deleted = 0
    after_pk = 0
    while True:
        rows = list(
            DeliveryReceipt.objects.filter(pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", "received_at", "log_id")[:batch_size]
        )
        if not rows:
            return deleted
        doomed = [
            pk
            for pk, received_at, log_id in rows
            if log_id is None and received_at < before
        ]
        if doomed:
            count, _ = DeliveryReceipt.objects.filter(pk__in=doomed).delete()
            deleted += count
        after_pk, received_at = rows[-1][0], rows[-1][1]
        if received_at >= before:
            return deleted
