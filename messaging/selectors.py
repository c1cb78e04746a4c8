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


def dispatch_left_to_send(*, dispatch_id: int) -> bool:
    """Whether the dispatch has messages still to make or to send (retries included):
    once it has none, only their receipts are left to wait for."""
    dispatch = (
        Dispatch.objects.filter(pk=dispatch_id)
        .only("expected_audience", "audience", "pending")
        .first()
    )
    return dispatch is not None and not dispatch.all_sent


def retried_count(*, dispatch_id: int) -> int:
    """Logs that needed more than one attempt."""
    return CommunicationLog.objects.filter(
        dispatch_id=dispatch_id, attempts__gt=1
    ).count()
