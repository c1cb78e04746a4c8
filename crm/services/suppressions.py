"""The suppression list: addresses an organization must not message on a channel.

Entries are by normalized address (crm.contacts), so they hold for every lead that
has the address, now or later. This module is the only writer of Suppression.
"""

import logging
from collections.abc import Iterable

from crm.contacts import normalize_email, normalize_phone
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
