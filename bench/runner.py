"""Driving a launched campaign from a command: its workers, beat's duties, the wait.

The demo and the benchmark both start workers, launch one campaign and wait for it
while standing in for beat; they share this so that the benchmark measures exactly
the pipeline the demo shows.
"""

import time
from collections.abc import Callable
from contextlib import ExitStack

from django.conf import settings

from campaigns.models import Campaign
from config.workers import embedded_worker, worker_processes
from messaging.tasks import poll_receipts, send_due

# How often beat's duties (send what is due, poll receipts) run while following; the
# real beat schedules send_due every 10 s, sooner keeps a short run from idling.
BEAT_EVERY_SECONDS = 2.0


class CampaignTimeout(Exception):
    """The campaign did not complete in the time given."""


def workers_start(
    *,
    stack: ExitStack,
    count: int,
    running: bool = False,
    env: dict | None = None,
    logfile: str | None = None,
    concurrency: int = 1,
    say: Callable[[str], None] = print,
) -> list:
    """Workers for the rest of the `stack`: embedded, already running, or `count`
    processes on the configured broker (returned, so callers can watch them).

    `env` reaches worker processes only; an embedded worker shares this process's
    settings, which the caller adjusts itself.
    """
    if settings.CELERY_EMBEDDED:
        say("Embedded mode: a Celery worker runs in this process")
        stack.enter_context(embedded_worker())
        return []
    if running:
        say("Using the workers already running on the broker")
        return []
    say(f"Starting {count} worker processes")
    return stack.enter_context(
        worker_processes(count, env=env, logfile=logfile, concurrency=concurrency)
    )


def campaign_follow(
    *,
    campaign_id: int,
    timeout: float,
    on_tick: Callable[[Campaign], None] | None = None,
    poll_every: float = 0.2,
    until: Callable[[Campaign], bool] | None = None,
) -> Campaign:
    """Wait until the campaign completes (or `until` says the wait is over),
    standing in for beat; return it.

    Reads only the campaign and its dispatch row each tick (no count over logs), so
    following a large campaign costs the database next to nothing.
    """
    deadline = time.monotonic() + timeout
    next_beat = time.monotonic() + BEAT_EVERY_SECONDS
    while True:
        campaign = Campaign.objects.select_related("dispatch").get(pk=campaign_id)
        if on_tick is not None:
            on_tick(campaign)
        if campaign.status == Campaign.Status.COMPLETED or (
            until is not None and until(campaign)
        ):
            return campaign
        now = time.monotonic()
        if now > deadline:
            dispatch = campaign.dispatch
            counters = (
                {}
                if dispatch is None
                else {
                    name: getattr(dispatch, name)
                    for name in ("audience", "pending", "sent", "delivered", "failed")
                }
            )
            raise CampaignTimeout(
                f"campaign {campaign.pk} did not complete in {timeout:.0f} s: "
                f"{campaign.status} {counters}"
            )
        if now > next_beat:
            send_due.delay()
            poll_receipts.delay()
            next_beat = now + BEAT_EVERY_SECONDS
        time.sleep(poll_every)
