"""Reads for the admin's charts: the front page's KPIs and 30 days, a campaign's hours.

The 30 days come from the daily snapshots (one row per organization and day, kept
by the nightly automation); a day without a snapshot yet, today always among them,
is counted from the messages themselves, so the chart is whole from the first day,
and the messages are read back only as far as the oldest day without a snapshot.
"""

from datetime import date, timedelta

from django.db.models import Sum
from django.utils import timezone

from automations.models import CampaignHourlyStat, DailySnapshot
from campaigns.models import Campaign
from messaging import reporting

DAYS = 30
_SNAPSHOT_COLUMNS = {
    "sent": "messages_sent",
    "delivered": "messages_delivered",
    "failed": "messages_failed",
}


def dashboard(*, organization_ids: list[int] | None, today: date | None = None) -> dict:
    """KPIs of today and a series of DAYS days; `None` ids mean every organization."""
    today = today or timezone.localdate()
    first = today - timedelta(days=DAYS - 1)
    snapshots = DailySnapshot.objects.filter(date__gte=first, date__lte=today)
    campaigns = Campaign.objects.all()
    if organization_ids is not None:
        snapshots = snapshots.filter(organization_id__in=organization_ids)
        campaigns = campaigns.filter(organization_id__in=organization_ids)
    by_day = {
        row["date"]: row
        for row in snapshots.values("date")
        .annotate(**{name: Sum(column) for name, column in _SNAPSHOT_COLUMNS.items()})
        .order_by()
    }
    # Today is never final, so never from a snapshot. Counting from the logs
    # starts at the oldest day without one: usually today alone.
    days = [first + timedelta(days=n) for n in range(DAYS)]
    missing = [day for day in days if day not in by_day or day == today]
    computed = {
        row["bucket"]: row
        for row in reporting.daily_series(
            organization_ids=organization_ids,
            days=(today - missing[0]).days + 1,
            today=today,
        )
    }
    series = []
    for day in days:
        source = computed[day] if day in missing else by_day[day]
        series.append({"bucket": day, **{s: source[s] or 0 for s in _SNAPSHOT_COLUMNS}})
    return {
        "kpis": reporting.kpis_today(organization_ids=organization_ids),
        "running_campaigns": campaigns.filter(status=Campaign.Status.RUNNING).count(),
        "series": series,
        "from_snapshots": DAYS - len(missing),
    }


def campaign_hourly(campaign: Campaign) -> list[dict]:
    """A campaign's messages per hour: stored hours from the hourly table, the rest
    counted from the logs.

    An hour's row is final once refreshed after the hour ended; the logs are read
    only from the first hour not final, so a long-finished campaign costs one small
    read whatever its size.
    """
    stored = list(
        CampaignHourlyStat.objects.filter(campaign=campaign)
        .order_by("hour")
        .values("hour", "sent", "delivered", "failed", "updated_at")
    )
    final_until = None
    for row in stored:
        end = row["hour"] + timedelta(hours=1)
        if row["updated_at"] < end:
            break
        final_until = end
    counts = {
        row["hour"]: {s: row[s] for s in reporting.STAGES}
        for row in stored
        if final_until is not None and row["hour"] < final_until
    }
    if campaign.dispatch_id is not None:
        counts.update(
            reporting.dispatch_hourly_counts(
                dispatch_id=campaign.dispatch_id, since=final_until
            )
        )
    return reporting.hourly_rows(counts)
