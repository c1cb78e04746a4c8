"""Thin Celery tasks over the campaign services."""

from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from campaigns.services import chunking, expansion, lifecycle
from config.task_options import task_options

OPTIONS = task_options()


class ChunkTask(Task):
    """Marks the chunk dead, with the error, once its task has failed for good."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        message = args[0] if args else kwargs.get("message", {})
        expansion.chunk_mark_dead(
            job_id=message["job_id"], error=f"{type(exc).__name__}: {exc}"
        )


@shared_task(name="campaigns.chunk", **OPTIONS)
def chunk_campaign(campaign_id: int) -> int:
    return chunking.campaign_chunk_audience(campaign_id=campaign_id).chunks_created


@shared_task(name="campaigns.expand_chunk", base=ChunkTask, **OPTIONS)
def expand_chunk(message: dict) -> dict | None:
    """Takes the chunk message as stored; the row, not the message, is the truth."""
    return expansion.chunk_expand_and_send(job_id=message["job_id"])


@shared_task(name="campaigns.enqueue_chunks", **OPTIONS)
def enqueue_chunks(campaign_id: int) -> int:
    """Enqueue every queued chunk of a running campaign (after resume or rerun)."""
    return chunking.chunks_enqueue_queued(campaign_id=campaign_id)


@shared_task(name="campaigns.mark_completed", **OPTIONS)
def mark_completed(dispatch_id: int) -> bool:
    return lifecycle.campaign_mark_completed(dispatch_id=dispatch_id)


@shared_task(name="campaigns.mark_paused", **OPTIONS)
def mark_paused(dispatch_id: int) -> bool:
    return lifecycle.campaign_mark_paused(dispatch_id=dispatch_id)


@shared_task(name="campaigns.launch_scheduled", **OPTIONS)
def launch_scheduled() -> list[int]:
    """Beat: launch scheduled campaigns whose time has come."""
    return lifecycle.campaign_launch_due(now=timezone.now())


@shared_task(name="campaigns.sweep", **OPTIONS)
def sweep() -> int:
    """Beat: re-enqueue chunks whose message was lost, and unfinished chunking."""
    return chunking.chunks_requeue_stuck(
        older_than=timedelta(seconds=settings.MESSAGING_STUCK_AFTER_SECONDS)
    )


@shared_task(name="campaigns.sweep_completion", **OPTIONS)
def sweep_completion() -> dict:
    """Beat: time out missing receipts, finish what is done, complete campaigns."""
    sweep = lifecycle.campaigns_sweep_completion(now=timezone.now())
    return {
        "no_receipt": sweep.no_receipt,
        "cancelled": sweep.cancelled,
        "dispatches_finished": sweep.dispatches_finished,
        "campaigns_completed": sweep.campaigns_completed,
    }
