"""Thin Celery tasks for the automations: beat's scans, and the jobs they hand out.

Each beat task reads what is due and enqueues jobs, a batch per organization; each
job re-reads its rows and calls one service, which is idempotent (unique dedupe keys,
state checked under row locks), so a doubled scan or a redelivered job sends nothing
twice. Work is found again from the database by the next scan if a job is lost.

Every task is tried AUTOMATIONS_JOB_ATTEMPTS times with exponential backoff and
jitter, and keeps its result in django-celery-results, so a job that failed for
good is visible (state FAILURE, with its traceback) in the admin. The jobs' message
texts and payment links travel to the worker but are not kept there: the results
table stores each task's `argsrepr`, and a job task's says only how many jobs.
"""

import datetime as dt

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from automations import selectors
from automations.services import (
    analytics,
    dunning,
    nurture,
    reminders,
    retention,
    snapshots,
)
from crm.models import Organization

# Jobs per message on the broker: one service call and one log insert per batch.
JOBS_PER_TASK = 200
JOB = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    # Any error: a job's own failures (a database blip, a deadlock) are what a
    # later attempt cures; what is still failing after the last one is recorded.
    "autoretry_for": (Exception,),
    "max_retries": settings.AUTOMATIONS_JOB_ATTEMPTS - 1,
    "retry_backoff": settings.AUTOMATIONS_JOB_BACKOFF_SECONDS,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "ignore_result": False,
}


class JobsTask(Task):
    """A task taking (org_id, jobs): what it records of its arguments (the results
    table's task_args, Celery's own log lines) is the organization and a count,
    never the jobs' message texts or payment links. Retries publish through here
    too, so every attempt's record says the same."""

    def apply_async(self, args=None, kwargs=None, **options):
        options.setdefault("argsrepr", _opaque(args or ()))
        options.setdefault("kwargsrepr", _opaque(kwargs or {}))
        return super().apply_async(args, kwargs, **options)


def _opaque(arguments: tuple | list | dict) -> str:
    """A repr of the arguments with only their numbers shown."""

    def shown(value) -> str:
        if value is None or isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple | dict):
            return f"<{len(value)} items>"
        return f"<{type(value).__name__}>"

    if isinstance(arguments, dict):
        return "{" + ", ".join(f"{k!r}: {shown(v)}" for k, v in arguments.items()) + "}"
    return "(" + ", ".join(shown(value) for value in arguments) + ")"


def _enqueue(task, jobs_by_org: dict[int, list[dict]]) -> int:
    enqueued = 0
    for org_id, jobs in jobs_by_org.items():
        for start in range(0, len(jobs), JOBS_PER_TASK):
            task.delay(org_id, jobs[start : start + JOBS_PER_TASK])
            enqueued += 1
    return enqueued


@shared_task(name="automations.scan_reminders", **JOB)
def scan_reminders() -> dict:
    """Beat, hourly: queue every appointment reminder due and not yet sent."""
    jobs = selectors.reminders_due(now=timezone.now())
    return {
        "reminders": sum(map(len, jobs.values())),
        "tasks": _enqueue(send_reminders, jobs),
    }


@shared_task(name="automations.send_reminders", base=JobsTask, **JOB)
def send_reminders(org_id: int, jobs: list[dict]) -> int:
    return reminders.reminders_send(org_id=org_id, jobs=jobs)


@shared_task(name="automations.scan_dunning", **JOB)
def scan_dunning() -> dict:
    """Beat, daily: queue the dunning notice of every invoice at a new threshold."""
    jobs = selectors.dunning_due(today=timezone.localdate())
    return {
        "notices": sum(map(len, jobs.values())),
        "tasks": _enqueue(send_dunning, jobs),
    }


@shared_task(name="automations.send_dunning", base=JobsTask, **JOB)
def send_dunning(org_id: int, jobs: list[dict]) -> int:
    return dunning.dunning_send(org_id=org_id, jobs=jobs)


@shared_task(name="automations.advance_nurture", **JOB)
def advance_nurture() -> dict:
    """Beat: hand out the nurture steps that are due; complete finished enrollments."""
    result = nurture.nurture_due(now=timezone.now())
    return {
        "steps": sum(map(len, result.jobs.values())),
        "completed": result.completed,
        "tasks": _enqueue(send_nurture_steps, result.jobs),
    }


@shared_task(name="automations.send_nurture_steps", base=JobsTask, **JOB)
def send_nurture_steps(org_id: int, jobs: list[dict]) -> int:
    return nurture.nurture_send_steps(org_id=org_id, jobs=jobs)


@shared_task(name="automations.snapshot_all", **JOB)
def snapshot_all(date: str | None = None) -> int:
    """Beat, 01:00: a snapshot job per organization for yesterday (or `date`)."""
    day = date or (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    organizations = Organization.objects.values_list("pk", flat=True).order_by("pk")
    for org_id in organizations:
        snapshot.delay(org_id, day)
    return len(organizations)


@shared_task(name="automations.snapshot", **JOB)
def snapshot(org_id: int, date: str) -> dict | None:
    """One organization's KPIs of one day; running it again replaces them."""
    if not Organization.objects.filter(pk=org_id).exists():
        return None
    row = snapshots.snapshot_compute(organization_id=org_id, day=_parse_date(date))
    return {"org_id": org_id, "date": date, "messages_sent": row.messages_sent}


@shared_task(name="automations.purge_messages", **JOB)
def purge_messages() -> dict | None:
    """Beat, 03:00 (after the snapshots): delete messages past retention."""
    purged = retention.messages_retire(now=timezone.now())
    return (
        None if purged is None else {"logs": purged.logs, "receipts": purged.receipts}
    )


@shared_task(name="automations.campaign_hourly_stats", **JOB)
def campaign_hourly_stats() -> int:
    """Beat, hourly: recount the hour just ended and the current one."""
    now = timezone.now()
    return analytics.campaign_hourly_stats_refresh(
        since=now - dt.timedelta(hours=1), until=now
    )


def _parse_date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)
