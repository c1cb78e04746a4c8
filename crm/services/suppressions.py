"""The suppression list: addresses an organization must not message on a channel.

Entries are by normalized address (crm.contacts), so they hold for every lead that
has the address, now or later. This module is the only writer of Suppression and
SuppressionLift: adding is idempotent; lifting is an explicit act with a reason
(a user's, or the person's START) and leaves history.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q

from crm.contacts import ContactError, normalize_email, normalize_phone
from crm.models import Channel, Suppression, SuppressionLift

logger = logging.getLogger(__name__)

LIFT_REASON_MAX_LENGTH = 500


class SuppressionError(Exception):
    """A suppression change that is not allowed (no reason to lift it)."""


def address_normalize(*, channel: str, address: str) -> str:
    """The address as the list stores it; ContactError if it is not one."""
    if channel == Channel.SMS:
        return normalize_phone(address)
    if channel == Channel.EMAIL:
        return normalize_email(address)
    raise ValueError(f"unknown channel {channel!r}")


def address_suppress(
    *, organization_id: int, channel: str, address: str, reason: str, source: str = ""
) -> bool:
    """Suppress the (normalized) address; True if it was not suppressed already.

    An address suppressed already keeps its first reason and time.
    """
    _, created = suppression_get_or_create(
        organization_id=organization_id,
        channel=channel,
        address=address,
        reason=reason,
        source=source,
    )
    return created


def suppression_get_or_create(
    *, organization_id: int, channel: str, address: str, reason: str, source: str = ""
) -> tuple[Suppression, bool]:
    """The address's suppression, made now if there was none (then True)."""
    suppression, created = Suppression.objects.get_or_create(
        organization_id=organization_id,
        channel=channel,
        address=address_normalize(channel=channel, address=address),
        defaults={"reason": reason, "source": source[:200]},
    )
    if created:
        logger.info("address suppressed on %s (%s)", channel, reason)
    return suppression, created


def addresses_suppressed(
    *, organization_id: int, channel: str, addresses: Iterable[str]
) -> set[str]:
    """Which of the normalized `addresses` the organization suppresses: one query."""
    wanted = {address for address in addresses if address}
    if not wanted:
        return set()
    return set(
        Suppression.objects.filter(
            organization_id=organization_id, channel=channel, address__in=wanted
        ).values_list("address", flat=True)
    )


def address_suppress_by_keyword(
    *, organization_id: int, channel: str, address: str, at: datetime, source: str
) -> bool:
    """Suppress the address for a STOP the person sent at `at` (the vendor's clock);
    True if it was not suppressed already.

    A STOP suppression keeps the time of the latest STOP, which a START must be
    later than to lift it; a suppression for another reason is left as it is.
    """
    address = address_normalize(channel=channel, address=address)
    created = address_suppress(
        organization_id=organization_id,
        channel=channel,
        address=address,
        reason=Suppression.Reason.STOP_KEYWORD,
        source=source,
    )
    Suppression.objects.filter(
        Q(keyword_at__isnull=True) | Q(keyword_at__lt=at),
        organization_id=organization_id,
        channel=channel,
        address=address,
        reason=Suppression.Reason.STOP_KEYWORD,
    ).update(keyword_at=at)
    return created


def address_unsuppress_by_keyword(
    *, organization_id: int, channel: str, address: str, at: datetime
) -> bool:
    """Lift the address's suppression for a START the person sent at `at`; True if
    lifted.

    Only a suppression a STOP made (reason stop_keyword) is lifted, and only if that
    STOP was sent before `at`: a START never lifts one made by hand, by an import,
    a bounce or a complaint, and a late or replayed old START never undoes a newer
    STOP.
    """
    rows = Suppression.objects.filter(
        organization_id=organization_id,
        channel=channel,
        address=address_normalize(channel=channel, address=address),
        reason=Suppression.Reason.STOP_KEYWORD,
    ).filter(Q(keyword_at__lt=at) | Q(keyword_at__isnull=True, created_at__lt=at))
    with transaction.atomic():
        suppression = rows.select_for_update().first()
        if suppression is None:
            return False
        _lifted(suppression, lifted_by="START", reason="the person replied START")
    logger.info("address suppression on %s lifted by a START", channel)
    return True


class NewSuppression(NamedTuple):
    organization_id: int
    channel: str
    address: str
    reason: str
    source: str = ""
    # For a stop_keyword suppression: when the person said STOP, as far as known.
    keyword_at: datetime | None = None


def addresses_suppress(*, suppressions: Sequence[NewSuppression]) -> int:
    """Suppress many addresses in one statement; how many were given a valid one.

    For vendors' verdicts on a batch (a STOP reported by a send's error, bounces and
    complaints in receipts). An address suppressed already keeps its first reason;
    one that is not an address is left out.
    """
    rows = []
    for new in suppressions:
        try:
            address = address_normalize(channel=new.channel, address=new.address)
        except ContactError:
            continue
        rows.append(
            Suppression(
                organization_id=new.organization_id,
                channel=new.channel,
                address=address,
                reason=new.reason,
                source=new.source[:200],
                keyword_at=new.keyword_at,
            )
        )
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        logger.info("%d addresses suppressed by vendor verdicts", len(rows))
    return len(rows)


def address_unsuppress(
    *,
    suppression_id: int | None = None,
    organization_id: int | None = None,
    channel: str = "",
    address: str = "",
    lifted_by: str,
    reason: str,
) -> SuppressionLift | None:
    """Lift a suppression, by id or by organization, channel and address.

    A user's explicit act: the reason must not be blank. The lift is recorded in
    SuppressionLift with what the suppression was. None if there was nothing to
    lift (never suppressed, or lifted meanwhile). An id is looked up within
    `organization_id` when that is given too, so a caller scoped to one
    organization never lifts another's.
    """
    reason = reason.strip()
    if not reason:
        raise SuppressionError("lifting a suppression needs a reason")
    if len(reason) > LIFT_REASON_MAX_LENGTH:
        raise SuppressionError(
            f"the reason is at most {LIFT_REASON_MAX_LENGTH} characters"
        )
    rows = Suppression.objects.all()
    if suppression_id is not None:
        rows = rows.filter(pk=suppression_id)
        if organization_id is not None:
            rows = rows.filter(organization_id=organization_id)
    elif organization_id is not None and channel and address:
        rows = rows.filter(
            organization_id=organization_id,
            channel=channel,
            address=address_normalize(channel=channel, address=address),
        )
    else:
        raise TypeError("give suppression_id, or organization_id, channel, address")
    with transaction.atomic():
        suppression = rows.select_for_update().first()
        if suppression is None:
            return None
        lift = _lifted(suppression, lifted_by=lifted_by, reason=reason)
    logger.info("suppression on %s lifted (%s)", lift.channel, lift.suppression_reason)
    return lift


def addresses_unsuppress(
    *,
    organization_id: int,
    channel: str,
    addresses: Iterable[str],
    lifted_by: str,
    reason: str,
) -> list[SuppressionLift]:
    """Lift the suppressions of normalized addresses (a lead's), each recorded."""
    lifts = []
    for address in sorted({address for address in addresses if address}):
        lift = address_unsuppress(
            organization_id=organization_id,
            channel=channel,
            address=address,
            lifted_by=lifted_by,
            reason=reason,
        )
        if lift is not None:
            lifts.append(lift)
    return lifts


def _lifted(
    suppression: Suppression, *, lifted_by: str, reason: str
) -> SuppressionLift:
    """Delete the (locked) suppression and record what it was in the history."""
    lift = SuppressionLift.objects.create(
        organization_id=suppression.organization_id,
        channel=suppression.channel,
        address=suppression.address,
        suppression_reason=suppression.reason,
        suppression_source=suppression.source,
        suppressed_at=suppression.created_at,
        lifted_by=lifted_by[:200],
        reason=reason,
    )
    suppression.delete()
    return lift
