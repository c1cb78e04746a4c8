"""Reads over campaigns: their counters and progress."""

from campaigns.models import Campaign, CampaignChunk
from messaging.selectors import retried_count


def campaign_stats(*, campaign: Campaign) -> dict:
    """The counters a marketer watches, with progress as a share of the audience."""
    dispatch = campaign.dispatch
    expected = campaign.total_leads or 0
    if dispatch is None:
        return {"status": campaign.status, "audience": expected, "progress": 0.0}
    final = dispatch.delivered + dispatch.failed + dispatch.skipped + dispatch.cancelled
    return {
        "status": campaign.status,
        "audience": dispatch.audience,
        "expected_audience": dispatch.expected_audience or expected,
        "skipped": dispatch.skipped,
        "pending": dispatch.pending,
        "sent": dispatch.sent,
        "delivered": dispatch.delivered,
        "failed": dispatch.failed,
        "cancelled": dispatch.cancelled,
        "retried": retried_count(dispatch_id=dispatch.pk),
        "cost": dispatch.cost,
        "dead_chunks": campaign.chunks.filter(status=CampaignChunk.Status.DEAD).count(),
        "progress": round(final / expected, 4) if expected else 1.0,
    }
