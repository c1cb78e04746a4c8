"""Addresses a vendor reports as not to be written to again: suppressed.

An email vendor reports hard bounces, spam complaints and unsubscribes per message.
Each notice names our send id, so it finds its message (and so the address and the
organization) whether or not the send's answer has been recorded yet.
"""

from collections.abc import Sequence

from crm.contacts import ContactError
from crm.services.suppressions import address_suppress
from messaging.models import CommunicationLog
from vendors.base import SuppressionNotice


def vendor_suppressions_apply(
    *, vendor: str, notices: Sequence[SuppressionNotice]
) -> int:
    """Suppress the address of each noticed message for its organization; return
    how many addresses were newly suppressed. A repeated notice changes nothing."""
    if not notices:
        return 0
    logs = {
        send_id: (organization_id, channel, recipient)
        for send_id, organization_id, channel, recipient in (
            CommunicationLog.objects.filter(
                send_id__in={notice.send_id for notice in notices}
            ).values_list(
                "send_id", "dispatch__organization_id", "channel", "recipient"
            )
        )
    }
    suppressed = 0
    for notice in notices:
        if notice.send_id not in logs:
            continue
        organization_id, channel, recipient = logs[notice.send_id]
        try:
            suppressed += address_suppress(
                organization_id=organization_id,
                channel=channel,
                address=recipient,
                reason=notice.reason,
                source=f"{vendor} event",
            )
        except ContactError:
            # An address that was sendable once but no longer normalizes: nothing
            # to put on the list.
            continue
    return suppressed
