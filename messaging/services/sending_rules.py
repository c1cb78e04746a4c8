"""The sending rules a message meets when it is created and at every attempt.

Suppression (the organization's list, by normalized address), quiet hours (a
marketing message waits for its recipient's local window), the transactional night
(reminders and dunning are exempt from quiet hours, never sent at night) and the
frequency cap (marketing only, decided when messages are created). Answers to a
person's HELP are exempt from all of them: carriers require HELP be answered, even
after a STOP, and the person is waiting for it now. Every rule is
applied to a batch at once: one query for the suppressed addresses, one for the
cap's counts, and each time zone's window worked out once.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm.models import Channel
from crm.services.suppressions import addresses_suppressed
from messaging import selectors
from messaging.models import Dispatch, OwnDispatch

if TYPE_CHECKING:
    # Only a type here: messaging.services.logs applies these rules.
    from messaging.services.logs import NewLog

SUPPRESSED = "suppressed"
FREQUENCY_CAP = "frequency_cap"
OPTED_OUT = "opted_out"
_ALWAYS = time(0, 0)


@dataclass(frozen=True)
class SendingRules:
    """An organization's rules as they apply to one dispatch's messages."""

    dispatch_status: str
    organization_id: int
    transactional: bool
    time_zone: str
    # The daily local window [opens, closes) messages may go out in; it wraps past
    # midnight when opens > closes, and never closes when opens == closes.
    opens: time
    closes: time
    # At most `cap_count` marketing messages per lead and channel in `cap_days`
    # days; None when off, and always for transactional messages.
    cap_count: int | None
    cap_days: int
    # The dispatch answers people's own messages (HELP): no rule holds it back.
    answers: bool = False


def dispatch_rules(*, dispatch_id: int) -> SendingRules | None:
    """The rules for the dispatch's messages (and its status): one query."""
    row = (
        Dispatch.objects.filter(pk=dispatch_id)
        .values_list(
            "status",
            "organization_id",
            "transactional",
            "organization__time_zone",
            "organization__quiet_hours_enabled",
            "organization__quiet_hours_start",
            "organization__quiet_hours_end",
            "organization__transactional_night_start",
            "organization__transactional_night_end",
            "organization__frequency_cap_count",
            "organization__frequency_cap_days",
            "own__kind",
        )
        .first()
    )
    if row is None:
        return None
    (
        status,
        org_id,
        transactional,
        zone,
        quiet,
        quiet_start,
        quiet_end,
        night_start,
        night_end,
        cap_count,
        cap_days,
        own_kind,
    ) = row
    if transactional:
        # Allowed outside the night: from the night's end to its start.
        opens, closes = night_end, night_start
    elif quiet:
        opens, closes = quiet_start, quiet_end
    else:
        opens = closes = _ALWAYS
    return SendingRules(
        dispatch_status=status,
        organization_id=org_id,
        transactional=transactional,
        time_zone=zone,
        opens=opens,
        closes=closes,
        cap_count=None if transactional else cap_count,
        cap_days=cap_days,
        answers=own_kind == OwnDispatch.Kind.HELP_REPLY,
    )


def address_key(channel: str, recipient: str) -> str:
    """The recipient as the suppression list stores it (crm.contacts' forms).

    A sendable phone is E.164 already (crm.eligibility checks it), which is its
    normalized form; an email is normalized by lower-casing.
    """
    if channel == Channel.EMAIL:
        return recipient.strip().lower()
    return recipient.strip()


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def window_opening(
    *, now: datetime, zone: ZoneInfo, opens: time, closes: time
) -> datetime | None:
    """None if `now` falls in the daily window [opens, closes) of `zone`; else when
    the window next opens (in UTC). A window that never closes (opens == closes)
    always holds."""
    if opens == closes:
        return None
    local = now.astimezone(zone)
    clock = local.time()
    if opens < closes:
        inside = opens <= clock < closes
    else:
        inside = clock >= opens or clock < closes
    if inside:
        return None
    day = local.date()
    if clock >= opens:
        day += timedelta(days=1)
    return datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)


class _Openings:
    """When the rules' window next opens for each time zone, worked out once a zone:
    a lead's own zone, else the organization's."""

    def __init__(self, rules: SendingRules, now: datetime) -> None:
        self.rules = rules
        self.now = now
        self.default = _zone(rules.time_zone) or UTC
        self.by_zone: dict[str, datetime | None] = {}

    def of(self, zone_name: str | None) -> datetime | None:
        if self.rules.opens == self.rules.closes:
            return None
        name = zone_name or ""
        if name not in self.by_zone:
            self.by_zone[name] = window_opening(
                now=self.now,
                zone=_zone(name) or self.default,
                opens=self.rules.opens,
                closes=self.rules.closes,
            )
        return self.by_zone[name]


def messages_apply_rules(
    *,
    rules: SendingRules,
    channel: str,
    logs: Sequence["NewLog"],
    zones: dict[int, str],
    now: datetime,
) -> list["NewLog"]:
    """The logs to create, each sendable one checked against the rules.

    A suppressed recipient's message is skipped (`suppressed`); a marketing
    message over its lead's frequency cap is skipped (`frequency_cap`), the
    batch's own messages and the dispatch's earlier ones (a sequence's steps)
    counting too (a message created again, its log existing, is not written
    anyway); one outside its recipient's window is deferred to the window's next
    opening (`not_before`). `zones` holds the leads' own time zones by lead id.
    """
    sendable = [log for log in logs if not log.skip_reason]
    if not sendable or rules.answers:
        return list(logs)
    suppressed = addresses_suppressed(
        organization_id=rules.organization_id,
        channel=channel,
        addresses={address_key(channel, log.recipient) for log in sendable},
    )
    counts: dict[int, int] = {}
    if rules.cap_count is not None:
        counts = selectors.leads_marketing_counts(
            lead_ids={log.lead_id for log in sendable} - {None},
            channel=channel,
            since=now - timedelta(days=rules.cap_days),
        )
    openings = _Openings(rules, now)
    checked = []
    for log in logs:
        if log.skip_reason:
            checked.append(log)
        elif address_key(channel, log.recipient) in suppressed:
            checked.append(log._replace(skip_reason=SUPPRESSED))
        elif rules.cap_count is not None and _over_cap(counts, log, rules.cap_count):
            checked.append(log._replace(skip_reason=FREQUENCY_CAP))
        else:
            opening = openings.of(zones.get(log.lead_id))
            checked.append(log._replace(not_before=opening) if opening else log)
    return checked


def _over_cap(counts: dict[int, int], log: "NewLog", cap: int) -> bool:
    """Whether the lead has had its `cap` already; if not, this message counts."""
    if log.lead_id is None:
        return False
    count = counts.get(log.lead_id, 0)
    if count >= cap:
        return True
    counts[log.lead_id] = count + 1
    return False


@dataclass(frozen=True)
class ClaimCandidate:
    """A due log about to be claimed, with what the rules read of its lead."""

    id: int
    channel: str
    recipient: str
    time_zone: str | None
    sms_opt_out: bool | None
    email_opt_out: bool | None

    @property
    def opted_out(self) -> bool:
        if self.channel == Channel.SMS:
            return bool(self.sms_opt_out)
        return bool(self.email_opt_out)


@dataclass(frozen=True)
class ClaimVerdict:
    # Logs not to send: their skip reason by id.
    skipped: dict[int, str]
    # Logs to send later: when, by id.
    deferred: dict[int, datetime]


def claims_check(
    *, rules: SendingRules, candidates: Iterable[ClaimCandidate], now: datetime
) -> ClaimVerdict:
    """Which due logs the rules forbid sending now: those whose lead opted out of
    their channel or whose recipient is suppressed since (skipped), and those now
    outside their recipient's window (deferred to its opening). One query."""
    candidates = [] if rules.answers else list(candidates)
    by_channel: dict[str, set[str]] = {}
    for log in candidates:
        by_channel.setdefault(log.channel, set()).add(
            address_key(log.channel, log.recipient)
        )
    suppressed = {
        (channel, address)
        for channel, addresses in by_channel.items()
        for address in addresses_suppressed(
            organization_id=rules.organization_id,
            channel=channel,
            addresses=addresses,
        )
    }
    openings = _Openings(rules, now)
    skipped: dict[int, str] = {}
    deferred: dict[int, datetime] = {}
    for log in candidates:
        if log.opted_out:
            skipped[log.id] = OPTED_OUT
        elif (log.channel, address_key(log.channel, log.recipient)) in suppressed:
            skipped[log.id] = SUPPRESSED
        elif opening := openings.of(log.time_zone):
            deferred[log.id] = opening
    return ClaimVerdict(skipped=skipped, deferred=deferred)
