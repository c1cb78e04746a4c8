"""Thin Celery tasks over the campaign services."""

from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from campaigns.models import Campaign, CampaignChunk
from campaigns.services import expansion, lifecycle
from messaging import tasks as messaging_tasks
from messaging.services import dispatches, sending

TRANSIENT_ERRORS = (OperationalError, InterfaceError)
RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
    "ignore_result": True,
}


class ChunkTask(Task):
    """Marks the chunk dead, with the error, once its task has failed for good."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        message = args[0] if args else kwargs.get("message", {})
        expansion.chunk_mark_dead(
            job_id=message["job_id"], error=f"{type(exc).__name__}: {exc}"
        )


@shared_task(name="campaigns.chunk", **RELIABLE)
def chunk_campaign(campaign_id: int) -> int:
    return expansion.campaign_chunk_audience(campaign_id=campaign_id).chunks_created


@shared_task(name="campaigns.expand_chunk", base=ChunkTask, **RELIABLE)
def expand_chunk(message: dict) -> dict | None:
    """Takes the chunk message as stored; the row, not the message, is the truth."""
    result = expansion.chunk_expand(
        job_id=message["job_id"], batch=expansion.EXPAND_BATCH_CHUNKS, claim=True
    )
    if result is None:
        return None
    # The new logs go out from here, in this task, created already claimed: one
    # write per log less, and no send task searching for them.
    outcome = sending.logs_send_claimed(
        dispatch_id=result.dispatch_id, channel=result.channel, claimed=result.claimed
    )
    messaging_tasks.after_send(dispatch_id=result.dispatch_id, outcome=outcome)
    if not result.claimed:
        # Every message skipped: no send or receipt is left to check completion.
        dispatches.dispatch_finish_if_done(dispatch_id=result.dispatch_id)
    return {"pending": result.pending, "sent": outcome.sent}


@shared_task(name="campaigns.enqueue_chunks", **RELIABLE)
def enqueue_chunks(campaign_id: int) -> int:
    """Enqueue every queued chunk of a running campaign (after resume or rerun): a
    message for the first of each group, which takes the others with it."""
    chunks = CampaignChunk.objects.filter(
        campaign_id=campaign_id,
        status=CampaignChunk.Status.QUEUED,
        campaign__status=Campaign.Status.RUNNING,
    ).order_by("index")
    count = 0
    for chunk in expansion.batch_leaders(chunks.iterator(chunk_size=500)):
        expand_chunk.delay(chunk.as_message())
        count += 1
    chunks.update(enqueued_at=timezone.now())
    return count


@shared_task(name="campaigns.mark_completed", **RELIABLE)
def mark_completed(dispatch_id: int) -> bool:
    return lifecycle.campaign_mark_completed(dispatch_id=dispatch_id)


@shared_task(name="campaigns.launch_scheduled", **RELIABLE)
def launch_scheduled() -> list[int]:
    """Beat: launch scheduled campaigns whose time has come."""
    return lifecycle.campaign_launch_due(now=timezone.now())


@shared_task(name="campaigns.sweep", **RELIABLE)
def sweep() -> int:
    """Beat: re-enqueue chunks whose message was lost, and unfinished chunking."""
    stuck = expansion.chunks_stuck(
        older_than=timedelta(seconds=settings.MESSAGING_STUCK_AFTER_SECONDS)
    )
    for message in stuck:
        expand_chunk.delay(message)
    unchunked = Campaign.objects.filter(
        status=Campaign.Status.RUNNING, chunking_done=False
    ).values_list("pk", flat=True)
    for campaign_id in unchunked:
        chunk_campaign.delay(campaign_id)
    return len(stuck)


@shared_task(name="campaigns.sweep_completion", **RELIABLE)
def sweep_completion() -> dict:
    """Beat: time out missing receipts, finish what is done, complete campaigns."""
    sweep = lifecycle.campaigns_sweep_completion(now=timezone.now())
    return {
        "no_receipt": sweep.no_receipt,
        "cancelled": sweep.cancelled,
        "dispatches_finished": sweep.dispatches_finished,
        "campaigns_completed": sweep.campaigns_completed,
    }
