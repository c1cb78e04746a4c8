"""Appointment reminders: 24 h and 3 h ahead, exactly once, whatever the scans do."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import Appointment, AutomationDispatch
from automations.selectors import reminders_due
from automations.services.reminders import (
    appointment_cancel,
    appointment_reschedule,
    reminders_send,
)
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.selectors import dispatches_with_due_logs
from tests.automations.factories import AppointmentFactory

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def scan() -> int:
    """One run of the hourly scan and the reminder jobs it hands out."""
    jobs = reminders_due(now=timezone.now())
    return sum(reminders_send(org_id=org, jobs=batch) for org, batch in jobs.items())


def reminders_of(appointment: Appointment) -> list[tuple[str, dt.datetime]]:
    """(kind, when created) of every reminder log of the appointment, oldest first."""
    logs = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"appt{appointment.pk}-"
    ).order_by("created_at")
    return [(log.dedupe_key.split("-")[1], log.created_at) for log in logs]


def run_hourly(clock, *, until: dt.datetime, twice: bool = False) -> None:
    """Scan at every full hour from now until `until` (twice each, if asked)."""
    while timezone.now() < until:
        clock.shift(HOUR)
        scan()
        if twice:
            scan()


def test_reminders_go_24h_and_3h_ahead_exactly_once_even_when_each_scan_runs_twice(
    clock,
):
    starts_at = timezone.now() + dt.timedelta(days=2, minutes=30)
    appointment = AppointmentFactory(starts_at=starts_at)

    run_hourly(clock, until=starts_at + 2 * HOUR, twice=True)

    sent = reminders_of(appointment)
    assert [kind for kind, _ in sent] == ["24h", "3h"]
    # The first hourly scan at or after each reminder's moment sends it.
    assert sent[0][1] == starts_at - dt.timedelta(hours=24) + dt.timedelta(minutes=30)
    assert sent[1][1] == starts_at - dt.timedelta(hours=3) + dt.timedelta(minutes=30)


def test_the_job_carries_the_documented_payload(clock):
    appointment = AppointmentFactory(
        starts_at=timezone.now() + 2 * HOUR, title="Cleaning", location=""
    )

    jobs = reminders_due(now=timezone.now())

    [job] = jobs[appointment.organization_id]
    assert job == {
        "org_id": appointment.organization_id,
        "contact_id": appointment.lead_id,
        "appointment_id": appointment.pk,
        "message": job["message"],
        "scheduled_for": (appointment.starts_at - 3 * HOUR).isoformat(),
        "reminder_type": "3h",
        "starts_at": appointment.starts_at.isoformat(),
    }
    assert "Cleaning" in job["message"]


def test_overlapping_scans_create_one_reminder(clock):
    appointment = AppointmentFactory(starts_at=timezone.now() + 20 * HOUR)
    first = reminders_due(now=timezone.now())
    second = reminders_due(now=timezone.now())

    created = [
        reminders_send(org_id=org, jobs=jobs)
        for scan_jobs in (first, second)
        for org, jobs in scan_jobs.items()
    ]

    assert created == [1, 0]
    assert [kind for kind, _ in reminders_of(appointment)] == ["24h"]


def test_a_late_scan_catches_up_on_what_is_due_and_skips_what_is_past(clock):
    caught_up = AppointmentFactory(starts_at=timezone.now() + 30 * HOUR)
    missed = AppointmentFactory(starts_at=timezone.now() + 10 * HOUR)

    # No scan ran for 8 hours: the 24 h reminder of the first is 2 hours late and
    # still worth sending; the second is 2 hours away, past its 24 h reminder's
    # window and inside its 3 h one.
    clock.shift(8 * HOUR)
    scan()

    assert [kind for kind, _ in reminders_of(caught_up)] == ["24h"]
    assert [kind for kind, _ in reminders_of(missed)] == ["3h"]
    run_hourly(clock, until=caught_up.starts_at + HOUR)
    assert [kind for kind, _ in reminders_of(caught_up)] == ["24h", "3h"]
    assert [kind for kind, _ in reminders_of(missed)] == ["3h"]


def test_an_appointment_booked_two_hours_ahead_gets_no_24h_reminder(clock):
    appointment = AppointmentFactory(starts_at=timezone.now() + 2 * HOUR)

    run_hourly(clock, until=appointment.starts_at + HOUR)

    assert [kind for kind, _ in reminders_of(appointment)] == ["3h"]


def test_a_cancelled_appointment_gets_no_reminder_and_loses_a_waiting_one(clock):
    cancelled_early = AppointmentFactory(starts_at=timezone.now() + 48 * HOUR)
    cancelled_late = AppointmentFactory(starts_at=timezone.now() + 20 * HOUR)
    scan()
    # Its 24 h reminder is created but not yet sent (pending in the pipeline).
    [waiting] = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"appt{cancelled_late.pk}-"
    )
    assert waiting.status == LogStatus.PENDING

    appointment_cancel(appointment=cancelled_early)
    appointment_cancel(appointment=cancelled_late)
    run_hourly(clock, until=timezone.now() + 50 * HOUR)

    assert reminders_of(cancelled_early) == []
    waiting.refresh_from_db()
    assert waiting.status == LogStatus.CANCELLED
    assert [kind for kind, _ in reminders_of(cancelled_late)] == ["24h"]
    dispatch = Dispatch.objects.get(pk=waiting.dispatch_id)
    assert (dispatch.pending, dispatch.cancelled) == (0, 1)


def test_a_rescheduled_appointment_is_reminded_of_its_new_time_only(clock):
    appointment = AppointmentFactory(starts_at=timezone.now() + 20 * HOUR)
    scan()
    old_key = CommunicationLog.objects.get(
        dedupe_key__startswith=f"appt{appointment.pk}-"
    ).dedupe_key

    new_time = timezone.now() + dt.timedelta(days=3)
    appointment_reschedule(appointment=appointment, starts_at=new_time)
    run_hourly(clock, until=new_time + HOUR)

    logs = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"appt{appointment.pk}-"
    ).order_by("created_at")
    stamp = str(int(new_time.timestamp()))
    assert [log.dedupe_key for log in logs] == [
        old_key,
        f"appt{appointment.pk}-24h-{stamp}",
        f"appt{appointment.pk}-3h-{stamp}",
    ]
    # The stale one was still waiting when the appointment moved: cancelled.
    assert logs[0].status == LogStatus.CANCELLED


def test_a_job_for_an_appointment_moved_after_the_scan_sends_nothing(clock):
    appointment = AppointmentFactory(starts_at=timezone.now() + 2 * HOUR)
    jobs = reminders_due(now=timezone.now())
    appointment_reschedule(
        appointment=appointment, starts_at=timezone.now() + dt.timedelta(days=5)
    )

    created = reminders_send(
        org_id=appointment.organization_id, jobs=jobs[appointment.organization_id]
    )

    assert created == 0


def test_reminders_are_pending_logs_the_pipeline_sends_and_opt_outs_are_skipped(
    clock,
):
    reachable = AppointmentFactory(starts_at=timezone.now() + 2 * HOUR)
    opted_out = AppointmentFactory(
        organization=reachable.organization,
        starts_at=timezone.now() + 2 * HOUR,
        lead__sms_opt_out=True,
    )

    scan()
    scan()

    dispatch = AutomationDispatch.objects.get(
        organization=reachable.organization, kind=AutomationDispatch.Kind.REMINDERS
    ).dispatch
    logs = {log.lead_id: log for log in dispatch.logs.all()}
    assert logs[reachable.lead_id].status == LogStatus.PENDING
    assert logs[reachable.lead_id].recipient == reachable.lead.phone
    assert logs[opted_out.lead_id].status == LogStatus.SKIPPED
    assert logs[opted_out.lead_id].skip_reason == "opted_out"
    dispatch.refresh_from_db()
    assert (dispatch.audience, dispatch.pending, dispatch.skipped) == (2, 1, 1)
    # The pipeline's beat dispatcher (messaging.send_due) finds it due now.
    assert (dispatch.pk, 1) in list(dispatches_with_due_logs(now=timezone.now()))
