"""Hourly campaign analytics: sent, delivered and failed per campaign and hour."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from automations.models import CampaignHourlyStat
from messaging.models import CommunicationLog

_EVENTS = (("sent", "sent_at"), ("delivered", "delivered_at"), ("failed", "failed_at"))


def _zero() -> dict[str, int]:
    return {"sent": 0, "delivered": 0, "failed": 0}


def hour_start(moment: datetime) -> datetime:
    """The start of the hour holding `moment`, in settings.TIME_ZONE."""
    return timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)


def campaign_hourly_stats_refresh(*, since: datetime, until: datetime) -> int:
    """Recount every campaign's events in the hours from `since` to `until`.

    Replaces each (campaign, hour) row in that range, zeroing any whose events
    are gone (a failed message sent again loses its earlier sent time), so a rerun
    or an overlapping run leaves the same rows. Returns how many rows were written.
    """
    since, until = hour_start(since), hour_start(until) + timedelta(hours=1)
    counts: dict[tuple[int, datetime], dict[str, int]] = {}
    for name, column in _EVENTS:
        rows = (
            CommunicationLog.objects.filter(
                dispatch__campaign__isnull=False,
                **{f"{column}__gte": since, f"{column}__lt": until},
            )
            .annotate(hour=TruncHour(column, tzinfo=timezone.get_default_timezone()))
            .values_list("dispatch__campaign", "hour")
            .annotate(n=Count("id"))
            .order_by()
        )
        for campaign_id, hour, n in rows:
            counts.setdefault((campaign_id, hour), _zero())[name] = n
    with transaction.atomic():
        stale = CampaignHourlyStat.objects.filter(hour__gte=since, hour__lt=until)
        for stat in stale.select_for_update():
            if (stat.campaign_id, stat.hour) not in counts:
                counts[(stat.campaign_id, stat.hour)] = _zero()
        CampaignHourlyStat.objects.bulk_create(
            [
                CampaignHourlyStat(campaign_id=campaign_id, hour=hour, **values)
                for (campaign_id, hour), values in counts.items()
            ],
            update_conflicts=True,
            unique_fields=["campaign", "hour"],
            update_fields=["sent", "delivered", "failed", "updated_at"],
        )
    return len(counts)
