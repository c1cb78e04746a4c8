"""A real beat (the database scheduler) runs the reminder scan through a real worker."""

import datetime as dt
import io
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_results.models import TaskResult

from messaging.models import CommunicationLog, LogStatus
from tests.automations.factories import AppointmentFactory
from tests.support.workers import OUTPUT_DIR, wait_for

pytestmark = pytest.mark.integration


@contextmanager
def beat_process(tmp_path):
    """`celery beat` on the database scheduler, reading this test's database."""
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}"
            f"/{database['NAME']}"
        ),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    OUTPUT_DIR.mkdir(exist_ok=True)
    with open(OUTPUT_DIR / "integration-beat.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--pidfile",
                str(tmp_path / "beat.pid"),
                "--schedule",
                str(tmp_path / "beat-schedule"),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def succeeded(task_name: str) -> int:
    return TaskResult.objects.filter(task_name=task_name, status="SUCCESS").count()


def test_beat_runs_the_reminder_scan_through_a_worker_and_sends_once(
    start_workers, tmp_path
):
    # The installed schedule, made due every second instead of hourly; the rest
    # off, so the worker does only this.
    call_command("setup_schedules", stdout=io.StringIO())
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.exclude(task="automations.scan_reminders").update(
        enabled=False
    )
    PeriodicTask.objects.filter(task="automations.scan_reminders").update(
        interval=every_second, crontab=None
    )
    PeriodicTasks.update_changed()
    appointment = AppointmentFactory(starts_at=timezone.now() + dt.timedelta(hours=2))
    start_workers(1, SIMULATOR_SUCCESS_RATE="1")

    with beat_process(tmp_path) as beat:
        # Several scans in a row: every one after the first finds it already sent.
        wait_for(
            lambda: (
                succeeded("automations.scan_reminders") >= 3
                and succeeded("automations.send_reminders") >= 1
            ),
            timeout=90,
        )
        assert beat.poll() is None, "beat exited early"

    logs = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"appt{appointment.pk}-"
    )
    wait_for(
        lambda: logs.filter(status__in=[LogStatus.SENT, LogStatus.DELIVERED]).exists(),
        timeout=30,
    )
    [log] = logs
    assert log.dedupe_key.startswith(f"appt{appointment.pk}-3h-")
    assert log.recipient == appointment.lead.phone
    assert log.sent_at is not None
    scan = TaskResult.objects.filter(task_name="automations.scan_reminders").first()
    assert scan.periodic_task_name == "Appointment reminders"
