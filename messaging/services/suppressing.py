"""Vendors' verdicts that suppress: an error code saying the address must not be
messaged again (a STOP the vendor knows of, a hard bounce, a complaint)."""

from collections.abc import Iterable

from django.utils import timezone

from crm.models import Suppression
from crm.services.suppressions import NewSuppression, addresses_suppress
from messaging.models import CommunicationLog
from vendors.registry import suppressing_codes


def logs_suppress_recipients(*, failures: Iterable[tuple[int, str, str]]) -> int:
    """Suppress the recipients of failed logs whose vendor's error code says so.

    `failures` are (log id, vendor, error code). Each address is suppressed in the
    log's organization, on its channel, with the reason the vendor's adapter gives
    the code; one read and one insert for the batch, none when no code suppresses.
    Returns how many addresses were suppressed (or already were).
    """
    reasons = {}
    for log_id, vendor, code in failures:
        reason = suppressing_codes(vendor).get(code or "")
        if reason:
            reasons[log_id] = (reason, f"{vendor} error {code}")
    if not reasons:
        return 0
    now = timezone.now()
    logs = CommunicationLog.objects.filter(pk__in=reasons).values_list(
        "pk", "dispatch__organization_id", "channel", "recipient"
    )
    return addresses_suppress(
        suppressions=[
            NewSuppression(
                organization_id=organization_id,
                channel=channel,
                address=recipient,
                reason=reasons[pk][0],
                source=f"{reasons[pk][1]}, message {pk}",
                keyword_at=(
                    now if reasons[pk][0] == Suppression.Reason.STOP_KEYWORD else None
                ),
            )
            for pk, organization_id, channel, recipient in logs
        ]
    )
