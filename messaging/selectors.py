"""Reads over messages and receipts."""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, Q

from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.sql import bulk_cursor

_LOG_TABLE = CommunicationLog._meta.db_table


class SentLog(NamedTuple):
    """A log a receipt may be for, as _logs_by_ref reads it."""

    id: int
    dispatch_id: int
    status: str


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


def leads_marketing_counts(
    *,
    lead_ids: Iterable[int],
    channel: str,
    since: datetime,
) -> dict[int, int]:
    """Lead id -> marketing messages on `channel` created for it since `since` that
    went or will go out (the frequency cap's count): one query, by the lead's
    created index. Skipped, cancelled and never-accepted failed messages do not
    count."""
    ids = list(lead_ids)
    if not ids:
        return {}
    rows = (
        CommunicationLog.objects.filter(
            lead_id__in=ids,
            created_at__gte=since,
            channel=channel,
            dispatch__transactional=False,
        )
        .exclude(status__in=(LogStatus.SKIPPED, LogStatus.CANCELLED))
        .exclude(status=LogStatus.FAILED, sent_at__isnull=True)
        .values_list("lead_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    return dict(rows)


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


def logs_sent_by_ref(refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SentLog]:
    """(vendor, vendor_ref) -> the log sent so.

    Asks by vendor and non-empty ref, the terms of the unique partial index: by ref
    alone Postgres could not use it and scanned the whole log table each batch.
    """
    by_vendor: dict[str, set[str]] = {}
    for vendor, ref in refs:
        by_vendor.setdefault(vendor, set()).add(ref)
    if not by_vendor:
        return {}
    if connection.vendor == "postgresql":
        # The refs as one binary array (an IN list of a thousand quoted literals
        # costs more to build and plan than to run), probed one by one: given
        # `vendor = %s AND vendor_ref = ANY(...)` with stale statistics the planner
        # may read every log of the vendor and filter (1.4 s at 600,000 logs, 16 ms
        # probed); OFFSET 0 keeps it from flattening the probe back into that.
        rows = []
        with bulk_cursor() as cursor:
            for vendor, vendor_refs in by_vendor.items():
                cursor.execute(
                    "SELECT log.* FROM unnest(%b::text[]) AS wanted(ref)"
                    " CROSS JOIN LATERAL (SELECT id, dispatch_id, status, vendor,"
                    f" vendor_ref FROM {_LOG_TABLE} WHERE vendor = %s"
                    " AND vendor_ref = wanted.ref AND NOT vendor_ref = ''"
                    " OFFSET 0) AS log",
                    [list(vendor_refs), vendor],
                )
                rows += cursor.fetchall()
        return {
            (vendor, ref): SentLog(pk, d, status) for pk, d, status, vendor, ref in rows
        }
    match = Q()
    for vendor, vendor_refs in by_vendor.items():
        match |= Q(vendor=vendor, vendor_ref__in=list(vendor_refs))
    rows = (
        CommunicationLog.objects.filter(match)
        .exclude(vendor_ref="")
        .values_list("pk", "dispatch_id", "status", "vendor", "vendor_ref")
    )
    return {
        (vendor, ref): SentLog(pk, d, status) for pk, d, status, vendor, ref in rows
    }
