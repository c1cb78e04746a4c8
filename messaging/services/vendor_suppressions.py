"""Addresses a vendor reports as not to be written to again: suppressed.

An email vendor reports hard bounces, spam complaints and unsubscribes per message,
whatever the message's state: a complaint or an unsubscribe follows a delivery, and
so can a bounce (the receiving server's own, later). So these are not error codes
of a failing message (messaging.services.suppressing) but notices of their own.
Each names our send id, so it finds its message (and so the address and the
organization) whether or not the send's answer has been recorded yet.
"""

from collections.abc import Sequence

from crm.services.suppressions import NewSuppression, addresses_suppress
from messaging.models import CommunicationLog
from vendors.base import SuppressionNotice


def vendor_suppressions_apply(
    *, vendor: str, notices: Sequence[SuppressionNotice]
) -> int:
    """Suppress the address of each noticed message in its organization, on its
    channel: one read and one insert. Returns how many addresses were suppressed
    (or already were); a repeated notice changes nothing."""
    if not notices:
        return 0
    reasons = {notice.send_id: notice.reason for notice in notices}
    logs = CommunicationLog.objects.filter(send_id__in=reasons).values_list(
        "send_id", "dispatch__organization_id", "channel", "recipient"
    )
    return addresses_suppress(
        suppressions=[
            NewSuppression(
                organization_id=organization_id,
                channel=channel,
                address=recipient,
                reason=reasons[send_id],
                source=f"{vendor} event, message {send_id}",
            )
            for send_id, organization_id, channel, recipient in logs
        ]
    )
