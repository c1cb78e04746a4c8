"""Retention of messages: how far back they are kept, and the nightly deletion."""

import datetime as dt

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from crm.models import Organization
from messaging.services.retention import Purged, messages_purge


def retention_cutoff(*, now: dt.datetime) -> dt.datetime | None:
    """Messages whose last change is before this may be deleted; None while
    retention is off (MESSAGING_RETENTION_DAYS 0).

    MESSAGING_RETENTION_DAYS whole days back from today's start, and never past a
    day that an organization's daily snapshot has not counted yet: the snapshots
    keep the KPIs of days whose messages are gone.
    """
    days = settings.MESSAGING_RETENTION_DAYS
    if days <= 0:
        return None
    today = timezone.localtime(now).date()
    cutoff = _start_of(today - dt.timedelta(days=days))
    counted_until = (
        Organization.objects.annotate(last_snapshot=Max("snapshots__date"))
        .order_by()
        .values_list("last_snapshot", "created_at")
    )
    for last_snapshot, created_at in counted_until:
        if last_snapshot is not None:
            bound = _start_of(last_snapshot + dt.timedelta(days=1))
        else:
            bound = _start_of(timezone.localtime(created_at).date())
        cutoff = min(cutoff, bound)
    return cutoff


def messages_retire(*, now: dt.datetime) -> Purged | None:
    """Delete the messages (and receipts) past retention, at most
    MESSAGING_RETENTION_MAX_PER_RUN; the next run goes on where this one stopped."""
    cutoff = retention_cutoff(now=now)
    if cutoff is None:
        return None
    return messages_purge(
        before=cutoff, max_logs=settings.MESSAGING_RETENTION_MAX_PER_RUN
    )


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
