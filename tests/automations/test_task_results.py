"""What the task results table keeps of an automation job: never its message texts."""

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from automations.selectors import reminders_due
from automations.tasks import scan_dunning, scan_reminders
from messaging.models import CommunicationLog
from tests.automations.factories import AppointmentFactory, InvoiceFactory
from tests.support.workers import wait_for

pytestmark = pytest.mark.integration


def stored_rows(task_name: str) -> list[str]:
    """Everything the results table holds for the task's runs, as text."""
    return [
        " ".join(
            str(value)
            for value in (
                row.task_args,
                row.task_kwargs,
                row.result,
                row.meta,
                row.traceback,
            )
        )
        for row in TaskResult.objects.filter(task_name=task_name)
    ]


def test_automation_job_results_keep_no_message_text_or_payment_link(start_workers):
    # Given an overdue invoice with a payment link and an appointment in two hours
    invoice = InvoiceFactory(
        due_date=timezone.localdate() - dt.timedelta(days=3),
        payment_link="https://pay.example.com/secret-link-4711",
    )
    appointment = AppointmentFactory(starts_at=timezone.now() + dt.timedelta(hours=2))
    [[reminder]] = reminders_due(now=timezone.now()).values()
    start_workers(1, SIMULATOR_SUCCESS_RATE="1")

    # When a worker runs the scans and the jobs they hand out
    scan_dunning.delay()
    scan_reminders.delay()
    wait_for(
        lambda: (
            TaskResult.objects.filter(
                task_name__in=[
                    "automations.send_dunning",
                    "automations.send_reminders",
                ],
                status="SUCCESS",
            ).count()
            == 2
        ),
        timeout=90,
    )

    # Then the notices went out, and their jobs' records say only how many there were
    assert CommunicationLog.objects.filter(lead=invoice.lead).exists()
    assert CommunicationLog.objects.filter(lead=appointment.lead).exists()
    rows = stored_rows("automations.send_dunning") + stored_rows(
        "automations.send_reminders"
    )
    assert len(rows) == 2
    for text in rows:
        assert "secret-link-4711" not in text
        assert reminder["message"] not in text
        assert invoice.lead.phone not in text
    [dunning] = TaskResult.objects.filter(task_name="automations.send_dunning")
    assert dunning.task_args == f'"({invoice.organization_id}, <1 items>)"'
