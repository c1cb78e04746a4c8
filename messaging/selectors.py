"""Reads over messages and receipts."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count

from messaging.models import CommunicationLog, Dispatch, LogStatus


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


def retried_count(*, dispatch_id: int) -> int:
    """Logs that needed more than one attempt."""
    return CommunicationLog.objects.filter(
        dispatch_id=dispatch_id, attempts__gt=1
    ).count()
