"""The suppression list: addresses an organization must not message on a channel.

Entries are by normalized address (crm.contacts), so they hold for every lead that
has the address, now or later. This module is the only writer of Suppression and
SuppressionLift: adding is idempotent, lifting is an explicit act with a reason and
leaves history.
"""

import logging
from collections.abc import Iterable

from django.db import transaction

from crm.contacts import normalize_email, normalize_phone
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


def addresses_suppress(
    *,
    organization_id: int,
    channel: str,
    addresses: Iterable[str],
    reason: str,
    source: str = "",
) -> int:
    """Suppress addresses already normalized (a lead's, an import's), one INSERT.

    Those suppressed already keep their first reason and time. Returns how many
    were new.
    """
    wanted = sorted({address for address in addresses if address})
    if not wanted:
        return 0
    before = len(
        addresses_suppressed(
            organization_id=organization_id, channel=channel, addresses=wanted
        )
    )
    Suppression.objects.bulk_create(
        [
            Suppression(
                organization_id=organization_id,
                channel=channel,
                address=address,
                reason=reason,
                source=source[:200],
            )
            for address in wanted
        ],
        ignore_conflicts=True,
    )
    added = len(wanted) - before
    if added:
        logger.info("%d addresses suppressed on %s (%s)", added, channel, reason)
    return max(added, 0)


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
