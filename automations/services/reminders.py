"""Appointment reminders: 24 h and 3 h before, each once per appointment and kind.

The hourly scan finds what is due and not yet sent; the reminder job creates the
log. Exactly once comes from the log's unique (dispatch, dedupe key): the key names
the appointment, the kind and the appointment's time, so a doubled, overlapping or
late scan inserts nothing the second time, and a rescheduled appointment is reminded
of its new time only.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from automations.models import Appointment, AutomationDispatch
from automations.reminder_rules import KINDS, reminder_key, reminder_kind_due
from automations.services.outbox import (
    automation_dispatch_id,
    lead_message,
    messages_queue,
)
from crm.models import Lead, Organization
from messaging.services.logs import logs_cancel_pending


class AppointmentStateError(Exception):
    """The appointment's status does not allow what was asked."""


def appointment_create(
    *,
    organization: Organization,
    lead: Lead,
    starts_at: datetime,
    title: str,
    location: str = "",
) -> Appointment:
    if lead.organization_id != organization.pk:
        raise ValueError("the lead belongs to another organization")
    return Appointment.objects.create(
        organization=organization,
        lead=lead,
        starts_at=starts_at,
        title=title,
        location=location,
    )


def appointment_cancel(*, appointment: Appointment) -> Appointment:
    """Cancel it, and any reminder of it still waiting to be sent."""
    if appointment.status != Appointment.Status.SCHEDULED:
        raise AppointmentStateError(f"the appointment is {appointment.status}")
    with transaction.atomic():
        _cancel_pending_reminders(appointment)
        appointment.status = Appointment.Status.CANCELLED
        appointment.save(update_fields=["status", "updated_at"])
    return appointment


def appointment_reschedule(
    *, appointment: Appointment, starts_at: datetime
) -> Appointment:
    """Move it; reminders of the old time still waiting are cancelled, and the new
    time gets its own reminders."""
    if appointment.status != Appointment.Status.SCHEDULED:
        raise AppointmentStateError(f"the appointment is {appointment.status}")
    with transaction.atomic():
        _cancel_pending_reminders(appointment)
        appointment.starts_at = starts_at
        appointment.save(update_fields=["starts_at", "updated_at"])
    return appointment


def appointment_update(*, appointment: Appointment, **fields: Any) -> Appointment:
    """Change the given fields, and only those. A new `starts_at` goes through
    appointment_reschedule, so reminders of the old time still waiting are
    cancelled; ValidationError names the fields at fault."""
    starts_at = fields.pop("starts_at", None)
    with transaction.atomic():
        if starts_at is not None and starts_at != appointment.starts_at:
            appointment_reschedule(appointment=appointment, starts_at=starts_at)
        if fields:
            for name, value in fields.items():
                setattr(appointment, name, value)
            appointment.full_clean(exclude=["organization"])
            appointment.save(update_fields=[*fields, "updated_at"])
    return appointment


def appointment_complete(*, appointment: Appointment) -> Appointment:
    if appointment.status != Appointment.Status.SCHEDULED:
        raise AppointmentStateError(f"the appointment is {appointment.status}")
    appointment.status = Appointment.Status.COMPLETED
    appointment.save(update_fields=["status", "updated_at"])
    return appointment


def _cancel_pending_reminders(appointment: Appointment) -> None:
    dispatch_id = (
        AutomationDispatch.objects.filter(
            organization_id=appointment.organization_id,
            kind=AutomationDispatch.Kind.REMINDERS,
        )
        .values_list("dispatch_id", flat=True)
        .first()
    )
    if dispatch_id is None:
        return
    keys = [
        reminder_key(
            appointment_id=appointment.pk,
            kind=kind.name,
            starts_at=appointment.starts_at,
        )
        for kind in KINDS
    ]
    logs_cancel_pending(dispatch_id=dispatch_id, dedupe_keys=keys)


def reminders_send(*, org_id: int, jobs: list[dict]) -> int:
    """Create the jobs' reminder logs (once each) and have them sent; return how
    many were new.

    Each job is checked again against its appointment: cancelled, rescheduled
    (`starts_at` moved) or no longer in the reminder's window means no reminder.
    """
    channel = settings.AUTOMATIONS_REMINDER_CHANNEL
    dispatch_id = automation_dispatch_id(
        organization_id=org_id, kind=AutomationDispatch.Kind.REMINDERS, channel=channel
    )
    with transaction.atomic():
        # Locked, so a cancel or reschedule meanwhile either comes first (and is
        # seen here) or waits and then cancels what this created.
        appointments = (
            Appointment.objects.select_for_update(of=("self",))
            .select_related("lead")
            .filter(
                pk__in=[job["appointment_id"] for job in jobs],
                organization_id=org_id,
                status=Appointment.Status.SCHEDULED,
            )
            .order_by("pk")
            .in_bulk()
        )
        now = timezone.now()
        messages = []
        for job in jobs:
            appointment = appointments.get(job["appointment_id"])
            starts_at = parse_datetime(job["starts_at"])
            if appointment is None or appointment.starts_at != starts_at:
                continue
            kind = reminder_kind_due(starts_at=starts_at, now=now)
            if kind is None or kind.name != job["reminder_type"]:
                continue
            messages.append(
                lead_message(
                    lead=appointment.lead,
                    channel=channel,
                    dedupe_key=reminder_key(
                        appointment_id=appointment.pk,
                        kind=kind.name,
                        starts_at=starts_at,
                    ),
                    body=job["message"],
                    subject=f"Reminder: {appointment.title}",
                )
            )
        return messages_queue(
            dispatch_id=dispatch_id, channel=channel, messages=messages
        )
