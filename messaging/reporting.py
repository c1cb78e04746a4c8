"""Reads for dashboards: time series, failure codes, today's KPIs, exhausted messages.

Each is one or a few grouped queries, never one per row or per bucket, so the admin
pages that show them cost the same whatever the campaign's size.
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from crm.models import Lead
from messaging.models import CommunicationLog, LogStatus
from messaging.services.sending_rules import FREQUENCY_CAP, SUPPRESSED

# The moments a log reaches each stage: one series per stage in the charts.
STAGES = {"sent": "sent_at", "delivered": "delivered_at", "failed": "failed_at"}
# A week of hours is as much as a chart shows legibly; older hours are cut.
MAX_HOURS = 24 * 7


def _logs(organization_ids: Iterable[int] | None) -> QuerySet[CommunicationLog]:
    logs = CommunicationLog.objects.all()
    if organization_ids is not None:
        logs = logs.filter(dispatch__organization_id__in=list(organization_ids))
    return logs


def _series(logs, trunc, since: datetime | None) -> dict[str, dict]:
    """{stage: {bucket: count}}: one grouped query per stage."""
    out = {}
    for stage, column in STAGES.items():
        rows = logs.filter(**{f"{column}__isnull": False})
        if since is not None:
            rows = rows.filter(**{f"{column}__gte": since})
        out[stage] = dict(
            rows.annotate(bucket=trunc(column))
            .values_list("bucket")
            .annotate(n=Count("id"))
            .order_by()
        )
    return out


def dispatch_hourly_counts(
    *, dispatch_id: int, since: datetime | None = None
) -> dict[datetime, dict[str, int]]:
    """{hour: {stage: count}} for the dispatch's messages, from `since` if given."""
    series = _series(
        CommunicationLog.objects.filter(dispatch_id=dispatch_id), TruncHour, since
    )
    hours = {hour for counts in series.values() for hour in counts}
    return {hour: {s: series[s].get(hour, 0) for s in STAGES} for hour in hours}


def hourly_rows(counts: dict[datetime, dict[str, int]]) -> list[dict]:
    """Rows for a chart, from the first hour to the last (at most MAX_HOURS).

    Hours without activity in between are present with zeros, so a chart's x-axis
    is time, not just the busy hours.
    """
    if not counts:
        return []
    hours = sorted(counts)
    rows, hour = [], max(hours[0], hours[-1] - timedelta(hours=MAX_HOURS - 1))
    while hour <= hours[-1]:
        values = counts.get(hour, {})
        rows.append({"bucket": hour, **{s: values.get(s, 0) for s in STAGES}})
        hour += timedelta(hours=1)
    return rows


def dispatch_hourly(*, dispatch_id: int) -> list[dict]:
    """Messages sent, delivered and failed per hour, counted from the logs."""
    return hourly_rows(dispatch_hourly_counts(dispatch_id=dispatch_id))


def failure_codes(*, dispatch_id: int, limit: int = 5) -> list[tuple[str, int]]:
    """The most common error codes of the dispatch's failed messages."""
    rows = (
        CommunicationLog.objects.filter(
            dispatch_id=dispatch_id, status=LogStatus.FAILED
        )
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")[:limit]
    )
    return [(code or "(none)", n) for code, n in rows]


def daily_series(
    *, organization_ids: Iterable[int] | None, days: int = 30, today: date | None = None
) -> list[dict]:
    """Sent, delivered and failed per day over the last `days`, computed from logs."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    series = _series(_logs(organization_ids), TruncDate, since)
    return [
        {"bucket": day, **{s: series[s].get(day, 0) for s in STAGES}}
        for day in (first + timedelta(days=n) for n in range(days))
    ]


def kpis_today(*, organization_ids: Iterable[int] | None) -> dict:
    """Today's counts for the admin's front page (leads, messages by stage, rate)."""
    ids = None if organization_ids is None else list(organization_ids)
    start = timezone.make_aware(
        datetime.combine(timezone.localdate(), datetime.min.time())
    )
    leads = (
        Lead.objects.all()
        if ids is None
        else Lead.objects.filter(organization_id__in=ids)
    )
    lead_counts = leads.aggregate(
        total=Count("id"), new=Count("id", filter=Q(created_at__gte=start))
    )
    logs = _logs(ids).filter(
        Q(sent_at__gte=start) | Q(delivered_at__gte=start) | Q(failed_at__gte=start)
    )
    counts = logs.aggregate(
        sent=Count("id", filter=Q(sent_at__gte=start)),
        delivered=Count("id", filter=Q(delivered_at__gte=start)),
        failed=Count("id", filter=Q(failed_at__gte=start)),
    )
    finished = counts["delivered"] + counts["failed"]
    return {
        "leads": lead_counts["total"],
        "new_leads": lead_counts["new"],
        **counts,
        "delivery_rate": round(counts["delivered"] / finished, 4) if finished else None,
    }


def logs_exhausted() -> QuerySet[CommunicationLog]:
    """Failed messages that used every attempt: the dead letters of sending."""
    return CommunicationLog.objects.filter(
        status=LogStatus.FAILED, attempts__gte=settings.MESSAGING_MAX_ATTEMPTS
    )


def dispatch_held_back(*, dispatch_id: int, now: datetime) -> dict:
    """What the sending rules hold back in a dispatch: its messages deferred
    (pending, due later: quiet hours, or a retry's backoff) with the first one's
    due time, and its skipped ones by reason, capped and suppressed among them.
    Two grouped queries; the deferred are read from the due index."""
    deferred = CommunicationLog.objects.filter(
        dispatch_id=dispatch_id, status=LogStatus.PENDING, next_attempt_at__gt=now
    ).aggregate(count=Count("id"), first_due=Min("next_attempt_at"))
    skipped = dict(
        CommunicationLog.objects.filter(
            dispatch_id=dispatch_id, status=LogStatus.SKIPPED
        )
        .values_list("skip_reason")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {
        "deferred": deferred["count"],
        "deferred_until": deferred["first_due"],
        "capped": skipped.get(FREQUENCY_CAP, 0),
        "suppressed": skipped.get(SUPPRESSED, 0),
        "skipped_by_reason": sorted(skipped.items(), key=lambda item: -item[1]),
    }


# Why a lead's message was held back, as lead_held_back tells it.
HELD_BACK_REASONS = {
    SUPPRESSED: "suppressed",
    FREQUENCY_CAP: "over the frequency cap",
    "opted_out": "opted out",
}


def lead_held_back(*, lead: Lead, now: datetime, latest: int = 20) -> dict:
    """Why the lead was not messaged lately: among its `latest` messages, those
    skipped by a sending rule and those deferred (until when). One query; its
    suppressed addresses are on its page already (crm.admin)."""
    logs = list(
        CommunicationLog.objects.filter(lead=lead)
        .select_related("dispatch")
        .order_by("-created_at")[:latest]
    )
    skipped = [
        log
        for log in logs
        if log.status == LogStatus.SKIPPED and log.skip_reason in HELD_BACK_REASONS
    ]
    deferred = [
        log
        for log in logs
        if log.status == LogStatus.PENDING
        and log.next_attempt_at is not None
        and log.next_attempt_at > now
    ]
    return {"skipped": skipped, "deferred": deferred}
