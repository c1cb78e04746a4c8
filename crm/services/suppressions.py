"""The suppression list: addresses an organization must not message on a channel.

Entries are by normalized address (crm.contacts), so they hold for every lead that
has the address, now or later. This module is the only writer of Suppression.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from django.db.models import Q

from crm.contacts import ContactError, normalize_email, normalize_phone
from crm.models import Channel, Suppression

logger = logging.getLogger(__name__)


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
    _, created = Suppression.objects.get_or_create(
        organization_id=organization_id,
        channel=channel,
        address=address_normalize(channel=channel, address=address),
        defaults={"reason": reason, "source": source[:200]},
    )
    if created:
        logger.info("address suppressed on %s (%s)", channel, reason)
    return created


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
    lifted, _ = (
        Suppression.objects.filter(
            organization_id=organization_id,
            channel=channel,
            address=address_normalize(channel=channel, address=address),
            reason=Suppression.Reason.STOP_KEYWORD,
        )
        .filter(Q(keyword_at__lt=at) | Q(keyword_at__isnull=True, created_at__lt=at))
        .delete()
    )
    if lifted:
        logger.info("address suppression on %s lifted by a START", channel)
    return bool(lifted)


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
