"""The jobs' contract: schedules installed once, three attempts, failures recorded."""

import importlib
import io
from unittest import mock

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import OperationalError
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from automations.services import snapshots
from automations.tasks import scan_reminders, snapshot
from campaigns.schedules import SCHEDULES
from config.celery import app as celery_app
from tests.crm.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

AUTOMATION_CRONTABS = {
    "automations.scan_reminders": "0 * * * *",
    "automations.advance_nurture": "*/5 * * * *",
    "automations.scan_dunning": "0 9 * * *",
    "automations.snapshot_all": "0 1 * * *",
    "automations.campaign_hourly_stats": "5 * * * *",
}


def installed() -> dict[str, str]:
    """task -> its crontab ("m h dom mon dow") or interval, as installed."""
    rows = {}
    for task in PeriodicTask.objects.select_related("crontab", "interval"):
        if task.crontab is not None:
            c = task.crontab
            rows[task.task] = (
                f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} "
                f"{c.day_of_week}"
            )
        elif task.interval is not None:
            rows[task.task] = f"every {task.interval.every} {task.interval.period}"
    return rows


def test_the_migration_and_setup_schedules_install_every_schedule_once():
    PeriodicTask.objects.all().delete()
    migration = importlib.import_module("automations.migrations.0002_install_schedules")
    [install] = migration.Migration.operations

    install.code(apps, None)
    install.code(apps, None)
    call_command("setup_schedules", stdout=io.StringIO())

    schedules = installed()
    assert {task: schedules[task] for task in AUTOMATION_CRONTABS} == (
        AUTOMATION_CRONTABS
    )
    assert set(schedules) == {schedule.task for schedule in SCHEDULES}
    assert PeriodicTask.objects.count() == len(SCHEDULES)


def test_setup_schedules_again_keeps_one_schedule_and_its_disabled_switch():
    call_command("setup_schedules", stdout=io.StringIO())
    PeriodicTask.objects.filter(task="automations.scan_dunning").update(enabled=False)

    call_command("setup_schedules", stdout=io.StringIO())

    [dunning] = PeriodicTask.objects.filter(task="automations.scan_dunning")
    assert dunning.enabled is False


@pytest.fixture
def stored_eager(monkeypatch):
    """Inline tasks whose outcome is stored, as a worker would store it."""
    for task in (scan_reminders, snapshot):
        monkeypatch.setattr(task, "store_eager_result", True)
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_failing_job_is_tried_three_times_then_recorded_as_failed(stored_eager):
    with mock.patch(
        "automations.selectors.reminders_due",
        side_effect=OperationalError("database went away"),
    ) as reminders_due:
        result = scan_reminders.apply()

    assert reminders_due.call_count == 3
    assert result.state == "FAILURE"
    stored = TaskResult.objects.get(task_id=result.id)
    assert (stored.status, stored.task_name) == (
        "FAILURE",
        "automations.scan_reminders",
    )
    assert "database went away" in stored.result


def test_a_job_that_fails_once_succeeds_on_its_second_attempt(stored_eager, clock):
    organization = OrganizationFactory()
    real = snapshots.snapshot_compute
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("deadlock detected")
        return real(**kwargs)

    with mock.patch("automations.services.snapshots.snapshot_compute", flaky):
        result = snapshot.apply(args=[organization.pk, "2026-03-01"])

    assert len(calls) == 2
    assert result.state == "SUCCESS"
    assert TaskResult.objects.get(task_id=result.id).status == "SUCCESS"
