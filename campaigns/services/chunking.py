"""Cutting a running campaign's audience into chunk rows and enqueueing them."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from campaigns import selectors
from campaigns.chunking import new_job_id
from campaigns.models import Campaign, CampaignChunk
from config.enqueue import enqueue
from crm.selectors import audience_lead_ids_after
from messaging.services.dispatches import dispatch_expect

CHUNK_TASK = "campaigns.chunk"
ENQUEUE_CHUNKS_TASK = "campaigns.enqueue_chunks"
EXPAND_TASK = "campaigns.expand_chunk"
# Chunks one expand task takes together (one transaction, and the vendor's calls
# for up to 4,000 logs): 20 chunks ran fastest per lead on 100,000 leads, 40 no
# faster and 6 MB larger (docs/performance.md). Chunks are grouped by index (0-19,
# 20-39, ...); the broker carries one message per group (batch_leaders).
EXPAND_BATCH_CHUNKS = 20
# Chunks written per transaction while cutting the audience: 60 chunks of 200 ids
# is one keyset page of 12,000 ids, a few milliseconds to read, and whole groups.
CHUNKS_PER_PAGE = 3 * EXPAND_BATCH_CHUNKS
# Stuck chunks re-enqueued per sweep.
STUCK_PER_SWEEP = 1000


@dataclass(frozen=True)
class ChunkingResult:
    chunks_created: int
    total_leads: int
    done: bool


def campaign_chunk_audience(*, campaign_id: int) -> ChunkingResult:
    """Cut the audience into chunk rows, page by page, enqueueing each after commit.

    The audience is the one launched: the rules and the moment launch kept.

    Resumable and safe to run twice: each page starts after the last lead already
    chunked, under the campaign's row lock, so two runs never chunk a lead twice.
    """
    created = 0
    while True:
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            structlog.contextvars.bind_contextvars(dispatch_id=campaign.dispatch_id)
            if campaign.chunking_done or campaign.status not in (
                Campaign.Status.RUNNING,
                Campaign.Status.PAUSED,
            ):
                return ChunkingResult(created, campaign.total_leads or 0, True)
            page, last_page = _chunk_page(campaign)
            created += page
            if last_page:
                total_leads = _chunking_done(campaign)
                return ChunkingResult(created, total_leads, True)


def _chunk_page(campaign: Campaign) -> tuple[int, bool]:
    """Write the next page of chunks, enqueued after commit if the campaign runs;
    how many, and whether it was the last page."""
    last = campaign.chunks.order_by("-index").values("index", "lead_ids").first()
    next_index = last["index"] + 1 if last else 0
    after_id = last["lead_ids"][-1] if last else 0
    size = campaign.effective_chunk_size
    lead_ids = audience_lead_ids_after(
        organization_id=campaign.organization_id,
        rules=campaign.audience_rules,
        now=campaign.launched_at,
        after_id=after_id,
        limit=size * CHUNKS_PER_PAGE,
    )
    now = timezone.now()
    chunks = [
        CampaignChunk(
            campaign=campaign,
            index=next_index + offset,
            job_id=new_job_id(campaign_id=campaign.pk, index=next_index + offset),
            lead_ids=lead_ids[start : start + size],
            created_at=now,
            enqueued_at=now,
        )
        for offset, start in enumerate(range(0, len(lead_ids), size))
    ]
    CampaignChunk.objects.bulk_create(chunks)
    if campaign.status == Campaign.Status.RUNNING:
        for leader in batch_leaders(chunks):
            enqueue(EXPAND_TASK, leader.as_message())
    return len(chunks), len(lead_ids) < size * CHUNKS_PER_PAGE


def _chunking_done(campaign: Campaign) -> int:
    """Store the exact figures and tell the dispatch its audience; the leads."""
    total = CampaignChunk.objects.filter(campaign=campaign).count()
    total_leads = _chunked_leads(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(
        chunking_done=True, total_chunks=total, total_leads=total_leads
    )
    dispatch_expect(dispatch_id=campaign.dispatch_id, audience=total_leads)
    return total_leads


def batch_leaders(chunks: Iterable[CampaignChunk]) -> Iterator[CampaignChunk]:
    """Of chunks in index order, those whose message the broker carries: the first
    of each group (see EXPAND_BATCH_CHUNKS) among them.

    A message per chunk would have most expand tasks find their chunk already taken
    by the group's first. Taking only its own group, no task can take another
    leader's chunk and leave that leader's followers without a message. A follower
    whose leader's message is lost stays queued; the sweeper sends it on its own
    after the stuck delay, as it would a lost leader.
    """
    group = None
    for chunk in chunks:
        if chunk.index // EXPAND_BATCH_CHUNKS != group:
            group = chunk.index // EXPAND_BATCH_CHUNKS
            yield chunk


def _chunked_leads(campaign: Campaign) -> int:
    """Leads in all chunks; the final audience, which may differ from launch's count."""
    sizes = campaign.chunks.values_list("lead_ids", flat=True)
    return sum(len(ids) for ids in sizes.iterator(chunk_size=2000))


def campaign_chunking_continue(*, campaign_id: int) -> None:
    """After commit, chunk whatever of the campaign's audience is not chunked yet."""
    enqueue(CHUNK_TASK, campaign_id)


def chunks_enqueue_queued_soon(*, campaign_id: int) -> None:
    """After commit, enqueue the campaign's queued chunks (chunks_enqueue_queued)."""
    enqueue(ENQUEUE_CHUNKS_TASK, campaign_id)


def chunks_enqueue_queued(*, campaign_id: int) -> int:
    """Enqueue every queued chunk of a running campaign (after resume or rerun): a
    message for the first of each group, which takes the others with it."""
    chunks = CampaignChunk.objects.filter(
        campaign_id=campaign_id,
        status=CampaignChunk.Status.QUEUED,
        campaign__status=Campaign.Status.RUNNING,
    ).order_by("index")
    count = 0
    for chunk in batch_leaders(chunks.iterator(chunk_size=500)):
        enqueue(EXPAND_TASK, chunk.as_message())
        count += 1
    chunks.update(enqueued_at=timezone.now())
    return count


def chunks_requeue_stuck(*, older_than: timedelta) -> int:
    """Enqueue again the chunks whose message is lost, and unfinished chunking."""
    stuck = selectors.chunks_stuck(older_than=older_than, limit=STUCK_PER_SWEEP)
    CampaignChunk.objects.filter(pk__in=[chunk.pk for chunk in stuck]).update(
        enqueued_at=timezone.now()
    )
    for chunk in stuck:
        enqueue(EXPAND_TASK, chunk.as_message())
    for campaign_id in selectors.campaigns_chunking_unfinished():
        enqueue(CHUNK_TASK, campaign_id)
    return len(stuck)
