"""Thin Celery tasks over messaging's entry points (messaging.services.outbound)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.task_options import DATABASE_ERRORS, task_options
from messaging.services import dispatches, outbound
from vendors.base import VendorUnavailable

# The database or the vendor was briefly unreachable: worth running the task again.
OPTIONS = task_options(retry_on=(*DATABASE_ERRORS, VendorUnavailable))


@shared_task(name="messaging.send_batch", **OPTIONS)
def send_batch(dispatch_id: int) -> dict:
    outcome = outbound.dispatch_send_batch(dispatch_id=dispatch_id)
    return {"claimed": outcome.claimed, "sent": outcome.sent}


@shared_task(name="messaging.poll_receipts", **OPTIONS)
def poll_receipts() -> dict:
    outcome = outbound.receipts_collect()
    return {"stored": outcome.stored, "processed": outcome.processed}


@shared_task(name="messaging.process_receipts", **OPTIONS)
def process_receipts() -> dict:
    """Apply receipts stored by webhooks."""
    outcome = outbound.receipts_apply_stored()
    return {"processed": outcome.processed}


@shared_task(name="messaging.finish_dispatch", **OPTIONS)
def finish_dispatch(dispatch_id: int) -> bool:
    return dispatches.dispatch_finish_if_done(dispatch_id=dispatch_id)


@shared_task(name="messaging.send_due", **OPTIONS)
def send_due() -> int:
    """Beat: enqueue a send for every batch of logs that is due (retries included)."""
    return outbound.dispatches_send_due(now=timezone.now())


@shared_task(name="messaging.sweep", **OPTIONS)
def sweep() -> dict:
    """Beat: release logs a dead worker left claimed, then pick up receipts."""
    result = outbound.messaging_sweep(
        stuck_after=timedelta(seconds=settings.MESSAGING_STUCK_AFTER_SECONDS)
    )
    return {"released": result.released}
