"""Reads over campaigns: their counters, progress and chunks."""

from datetime import timedelta

from django.utils import timezone

from campaigns.chunking import saved_chunk_size_for
from campaigns.models import Campaign, CampaignChunk
from crm.selectors import segment_leads
from messaging.selectors import retried_count

# What campaign_stats counts beside the status, the audience and the progress.
STATS_COUNTED = (
    "expected_audience",
    "skipped",
    "pending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "no_receipt",
    "unknown",
    "retried",
    "cost",
    "dead_chunks",
)


def campaign_stats(*, campaign: Campaign) -> dict:
    """The counters a marketer watches, with progress as a share of the audience;
    all zero before launch."""
    dispatch = campaign.dispatch
    expected = campaign.total_leads or 0
    if dispatch is None:
        return {
            "status": campaign.status,
            "audience": expected,
            **dict.fromkeys(STATS_COUNTED, 0),
            "progress": 0.0,
        }
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
        "no_receipt": dispatch.no_receipt,
        "unknown": dispatch.unknown,
        "retried": retried_count(dispatch_id=dispatch.pk),
        "cost": dispatch.cost,
        "dead_chunks": campaign.chunks.filter(status=CampaignChunk.Status.DEAD).count(),
        "progress": campaign_progress(campaign=campaign),
    }


def campaign_progress(*, campaign: Campaign) -> float:
    """The share of the audience whose message is final (1.0 for no audience)."""
    dispatch = campaign.dispatch
    expected = campaign.total_leads or 0
    if dispatch is None:
        return 0.0
    return round(dispatch.finished / expected, 4) if expected else 1.0


def campaign_chunking(*, campaign: Campaign) -> dict:
    """How the audience is (once launched) or would be (before) cut into chunks.

    Before launch the audience is counted now, so a marketer sees what launching
    would do; launch counts it again, and its numbers are the ones kept.
    """
    if campaign.total_leads is not None and campaign.effective_chunk_size:
        return {
            "total_leads": campaign.total_leads,
            "total_chunks": campaign.total_chunks or 0,
            "chunk_size": campaign.effective_chunk_size,
        }
    total_leads = segment_leads(segment=campaign.segment).count()
    size = saved_chunk_size_for(audience=total_leads, saved=campaign.chunk_size)
    return {
        "total_leads": total_leads,
        "total_chunks": -(-total_leads // size),
        "chunk_size": size,
    }


def chunks_stuck(*, older_than: timedelta, limit: int) -> list[CampaignChunk]:
    """Running campaigns' chunks queued longer ago than `older_than`: their message
    is lost. Up to `limit`."""
    cutoff = timezone.now() - older_than
    return list(
        CampaignChunk.objects.filter(
            status=CampaignChunk.Status.QUEUED,
            enqueued_at__lt=cutoff,
            campaign__status=Campaign.Status.RUNNING,
        )[:limit]
    )


def campaigns_chunking_unfinished() -> list[int]:
    """Running campaigns whose audience is not all chunked yet."""
    return list(
        Campaign.objects.filter(
            status=Campaign.Status.RUNNING, chunking_done=False
        ).values_list("pk", flat=True)
    )
