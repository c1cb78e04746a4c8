"""The periodic tasks beat runs, installed into django-celery-beat's database scheduler.

Kept in the database (not in settings) so operators see, edit and disable them in
the admin. Installing is idempotent: each schedule is found by its name.
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int | None = None
    crontab: str | None = None  # "minute hour day_of_month month day_of_week"
    description: str = ""


SCHEDULES = (
    Schedule(
        "Send what is due (retries)",
        "messaging.send_due",
        every_seconds=10,
        description="Enqueues a send for every batch of pending logs that is due.",
    ),
    Schedule(
        "Sweep stuck messages and receipts",
        "messaging.sweep",
        every_seconds=60,
        description="Releases logs a dead worker left claimed; polls receipts.",
    ),
    Schedule(
        "Sweep stuck campaign chunks",
        "campaigns.sweep",
        every_seconds=60,
        description="Re-enqueues chunks whose broker message was lost.",
    ),
    Schedule(
        "Sweep stalled lead imports",
        "api.sweep_lead_imports",
        every_seconds=60,
        description="Fails imports whose worker stopped; re-enqueues lost ones.",
    ),
    Schedule(
        "Complete finished campaigns",
        "campaigns.sweep_completion",
        every_seconds=60,
        description=(
            "Ends messages without receipt past the receipt timeout (no_receipt), "
            "cancels what a cancelled campaign left pending, completes dispatches "
            "and campaigns with nothing left to do."
        ),
    ),
    Schedule(
        "Launch scheduled campaigns",
        "campaigns.launch_scheduled",
        every_seconds=30,
        description="Launches scheduled campaigns whose time has come.",
    ),
    Schedule(
        "Appointment reminders",
        "automations.scan_reminders",
        crontab="0 * * * *",
        description="Queues the 24 h and 3 h reminders that are due and not sent.",
    ),
    Schedule(
        "Nurture sequences: send due steps",
        "automations.advance_nurture",
        crontab="*/5 * * * *",
        description="Sends each enrolled lead's next step once its delay is over.",
    ),
    Schedule(
        "Dunning notices",
        "automations.scan_dunning",
        crontab="0 9 * * *",
        description="Notices for open invoices 1, 3, 7, 14 days overdue (a setting).",
    ),
    Schedule(
        "Daily KPI snapshots",
        "automations.snapshot_all",
        crontab="0 1 * * *",
        description="Yesterday's KPIs per organization; a rerun replaces them.",
    ),
    Schedule(
        "Delete messages past retention",
        "automations.purge_messages",
        crontab="0 3 * * *",
        description=(
            "Deletes final messages and receipts older than MESSAGING_RETENTION_DAYS "
            "(off at 0), once the daily snapshots have counted their days."
        ),
    ),
    Schedule(
        "Campaign hourly analytics",
        "automations.campaign_hourly_stats",
        crontab="5 * * * *",
        description="Sent, delivered and failed per campaign and hour, for charts.",
    ),
)


def schedules_install(*, interval_model, crontab_model, task_model, timezone: str):
    """Create or update every schedule; models are passed so a migration can call it."""
    installed = []
    for schedule in SCHEDULES:
        defaults = {"task": schedule.task, "description": schedule.description}
        if schedule.every_seconds is not None:
            interval, _ = interval_model.objects.get_or_create(
                every=schedule.every_seconds, period="seconds"
            )
            defaults.update(interval=interval, crontab=None)
        else:
            minute, hour, day_of_month, month, day_of_week = schedule.crontab.split()
            crontab, _ = crontab_model.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month,
                day_of_week=day_of_week,
                timezone=timezone,
            )
            defaults.update(crontab=crontab, interval=None)
        task, _ = task_model.objects.update_or_create(
            name=schedule.name, defaults=defaults
        )
        installed.append(task)
    return installed


def install_in_migration(apps, schema_editor) -> None:
    """A RunPython step installing every schedule with the migration's models: each
    app's migration that adds a schedule runs it."""
    schedules_install(
        interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"),
        crontab_model=apps.get_model("django_celery_beat", "CrontabSchedule"),
        task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
        timezone=settings.TIME_ZONE,
    )
