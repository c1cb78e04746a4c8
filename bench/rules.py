"""The sending rules in the benchmark: quiet hours that defer a share of the leads,
a frequency cap that a share of them has reached, and the run's end with them on.

Deferred messages are due hours after the run: it ends when every other message is
final, and counts the deferred ones, checking that they wait (pending, due later).
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign
from crm.models import Lead, Organization
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.sending_rules import FREQUENCY_CAP

# The share of the audience the quiet hours defer, as near as the leads' time zones
# allow: each zone's leads are all in or all out.
DEFERRED_SHARE = 0.25
# The quiet hours are eleven, as the default 21:00-08:00.
QUIET_MINUTES = 11 * 60
# One lead in ten has had `cap` marketing messages a day ago: it is capped.
CAPPED_EVERY = 10
# A pending message due later than this is deferred, not a retry waiting its backoff
# (seconds at most in the benchmark).
DEFERRED_AFTER = dt.timedelta(minutes=1)
HISTORY_LABEL = "Bench history"


@dataclass(frozen=True)
class RunRules:
    quiet_hours: bool
    frequency_cap: int | None

    @property
    def on(self) -> bool:
        return self.quiet_hours or self.frequency_cap is not None


NO_RULES = RunRules(quiet_hours=False, frequency_cap=None)


def rules_set_up(*, organization: Organization, rules: RunRules) -> dict:
    """Switch the organization's rules as asked (off otherwise, so a plain run does
    not depend on the hour) and build the cap's history; what was set."""
    fields = {
        "quiet_hours_enabled": rules.quiet_hours,
        "frequency_cap_count": rules.frequency_cap,
        "frequency_cap_days": 7,
    }
    setup: dict = {}
    if rules.quiet_hours:
        opens, closes, share = _quiet_window(organization=organization)
        fields.update(quiet_hours_start=opens, quiet_hours_end=closes)
        setup.update(
            window=f"{opens:%H:%M:%S}-{closes:%H:%M:%S}", expected_deferred=share
        )
    Organization.objects.filter(pk=organization.pk).update(**fields)
    history_drop(organization=organization)
    if rules.frequency_cap is not None:
        setup["history_messages"] = _history_create(
            organization=organization, per_lead=rules.frequency_cap
        )
    return setup


def _quiet_window(*, organization: Organization) -> tuple[dt.time, dt.time, float]:
    """A window (opens, closes) whose quiet hours hold, right now, the leads' zones
    nearest DEFERRED_SHARE of them, and the share.

    Its edges sit half way between quarter hours of every zone's clock (all zones
    are whole, half or quarter hours apart), so no zone crosses one within 7
    minutes: the run's share is the one chosen.
    """
    now = timezone.now()
    default = _zone(organization.time_zone) or dt.UTC
    counts = (
        Lead.objects.filter(organization=organization)
        .values_list("timezone")
        .annotate(count=Count("id"))
        .order_by()
    )
    minutes: dict[float, int] = {}
    for name, count in counts:
        local = now.astimezone(_zone(name) or default)
        at = local.hour * 60 + local.minute + local.second / 60
        minutes[at] = minutes.get(at, 0) + count
    total = sum(minutes.values()) or 1
    offset = now.minute % 15 + now.second / 60 + 7.5
    best = None
    for step in range(96):
        closes = (offset + 15 * step) % 1440
        quiet = sum(
            count
            for at, count in minutes.items()
            if (at - closes) % 1440 < QUIET_MINUTES
        )
        distance = abs(quiet / total - DEFERRED_SHARE)
        if best is None or distance < best[0]:
            best = (distance, closes, quiet / total)
    _, closes, share = best
    return (
        _clock((closes + QUIET_MINUTES) % 1440),
        _clock(closes),
        round(share, 3),
    )


def _clock(minutes: float) -> dt.time:
    seconds = round(minutes * 60) % 86400
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _history_create(*, organization: Organization, per_lead: int) -> int:
    """`per_lead` delivered marketing messages a day ago to one lead in
    CAPPED_EVERY, in a dispatch of their own; how many. One statement."""
    dispatch = Dispatch.objects.create(
        organization=organization,
        label=HISTORY_LABEL,
        channel="sms",
        status=Dispatch.Status.COMPLETED,
    )
    logs = CommunicationLog._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {logs} (dispatch_id, lead_id, dedupe_key, send_id, channel,"
            " recipient, subject, body, status, skip_reason, attempts, vendor,"
            " vendor_ref, error_code, error_message, cost, created_at, updated_at,"
            " sent_at, delivered_at)"
            " SELECT %s, l.id, l.id || '-' || n, 'bench-h-' || %s || '-' || l.id"
            " || '-' || n, 'sms', l.phone, '', 'Earlier offer', 'delivered', '', 1,"
            " 'simulator', '', '', '', 0, %s, %s, %s, %s"
            f" FROM {Lead._meta.db_table} l, generate_series(1, %s) n"
            " WHERE l.organization_id = %s AND l.id %% %s = 0",
            [
                dispatch.pk,
                dispatch.pk,
                *[timezone.now() - dt.timedelta(days=1)] * 4,
                per_lead,
                organization.pk,
                CAPPED_EVERY,
            ],
        )
        created = cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {logs}")
    return created


def history_drop(*, organization: Organization) -> None:
    """Delete the cap's history of an earlier run."""
    history = Dispatch.objects.filter(organization=organization, label=HISTORY_LABEL)
    with transaction.atomic(), connection.cursor() as cursor:
        for dispatch_id in history.values_list("pk", flat=True):
            # Their logs have no receipts: one statement, not the ORM's cascade.
            cursor.execute(
                f"DELETE FROM {CommunicationLog._meta.db_table} WHERE dispatch_id = %s",
                [dispatch_id],
            )
        history.delete()


def rest_final(campaign: Campaign) -> bool:
    """Whether every message of the campaign is final but those deferred: all made,
    no receipt awaited, and every pending one due later (read only then)."""
    dispatch = campaign.dispatch
    if (
        dispatch is None
        or dispatch.expected_audience is None
        or dispatch.audience < dispatch.expected_audience
        or dispatch.awaiting_receipts
    ):
        return False
    return dispatch.pending == deferred_count(dispatch_id=dispatch.pk)


def deferred_count(*, dispatch_id: int) -> int:
    """The dispatch's messages pending until later than a retry would wait."""
    return CommunicationLog.objects.filter(
        dispatch_id=dispatch_id,
        status=LogStatus.PENDING,
        next_attempt_at__gt=timezone.now() + DEFERRED_AFTER,
    ).count()


def capped_count(*, dispatch_id: int) -> int:
    return CommunicationLog.objects.filter(
        dispatch_id=dispatch_id, status=LogStatus.SKIPPED, skip_reason=FREQUENCY_CAP
    ).count()
