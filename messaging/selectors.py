"""Reads over messages and receipts."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus


def dispatches_with_due_logs(*, now: datetime) -> Iterator[tuple[int, int]]:
    """(dispatch id, logs due) for every active dispatch with pending logs due now."""
    rows = (
        CommunicationLog.objects.filter(
            status=LogStatus.PENDING,
            next_attempt_at__lte=now,
            dispatch__status=Dispatch.Status.ACTIVE,
        )
        .values_list("dispatch_id")
        .annotate(due=Count("id"))
        .order_by()
    )
    yield from rows


def receipt_stats(*, hours: int = 24) -> dict[str, int]:
    """Receipts received in the last `hours`, by status."""
    since = timezone.now() - timedelta(hours=hours)
    counts = dict(
        DeliveryReceipt.objects.filter(received_at__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in DeliveryReceipt.Status.values}


def retried_count(*, dispatch_id: int) -> int:
    """Logs that needed more than one attempt."""
    return CommunicationLog.objects.filter(
        dispatch_id=dispatch_id, attempts__gt=1
    ).count()
