"""When an appointment is reminded, under which key, and in what words.

Pure rules, read by the scan (automations.selectors) and the reminder services
alike: which kind of reminder is due at a moment, the dedupe key that makes each
one go once, and its text.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from automations.models import Appointment
from crm.models import Lead


@dataclass(frozen=True)
class ReminderKind:
    name: str
    before: timedelta


# Latest first. A kind is due from `before` ahead of the appointment until the next
# kind is due (or the appointment starts): a scan that runs late still catches up,
# but never sends a 24 h reminder once the 3 h one is due, and never one for an
# appointment that has begun. So an appointment booked 2 hours ahead gets the 3 h
# reminder only.
KINDS = (
    ReminderKind("24h", timedelta(hours=24)),
    ReminderKind("3h", timedelta(hours=3)),
)


def reminder_key(*, appointment_id: int, kind: str, starts_at: datetime) -> str:
    return f"appt{appointment_id}-{kind}-{int(starts_at.timestamp())}"


def reminder_kind_due(*, starts_at: datetime, now: datetime) -> ReminderKind | None:
    """The one kind whose window holds `now`, if any."""
    until = starts_at
    for kind in reversed(KINDS):
        if starts_at - kind.before <= now < until:
            return kind
        until = starts_at - kind.before
    return None


def reminder_message(*, appointment: Appointment, lead: Lead) -> str:
    """The reminder's text, with the time in the lead's own time zone when known."""
    try:
        zone = ZoneInfo(lead.timezone) if lead.timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    local = timezone.localtime(appointment.starts_at, zone)
    first_name = (lead.name or "").split()[0] if (lead.name or "").strip() else ""
    greeting = f"Hi {first_name}, a" if first_name else "A"
    where = f" at {appointment.location}" if appointment.location else ""
    when = local.strftime("%a %d %b at %H:%M")
    return f"{greeting} reminder: {appointment.title} on {when}{where}."
