"""Appointments and invoices edited in the admin keep the automations' promises.

Marking an invoice paid, or moving or cancelling an appointment, goes through the
same services as the API: a notice or reminder still waiting is cancelled, and a
closed invoice or appointment cannot be reopened by hand.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import Appointment, Invoice
from automations.selectors import dunning_due, reminders_due
from automations.services.dunning import dunning_send
from automations.services.reminders import reminders_send
from messaging.models import CommunicationLog, LogStatus
from tests.automations.factories import AppointmentFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def queue_dunning() -> None:
    """Run the daily dunning job: notices wait as pending messages."""
    for org_id, jobs in dunning_due(today=timezone.localdate()).items():
        dunning_send(org_id=org_id, jobs=jobs)


def queue_reminders() -> None:
    """Run the hourly reminder scan: reminders wait as pending messages."""
    for org_id, jobs in reminders_due(now=timezone.now()).items():
        reminders_send(org_id=org_id, jobs=jobs)


def invoice_form(invoice: Invoice, **changes) -> dict:
    return {
        "lead": invoice.lead_id,
        "number": invoice.number,
        "amount": invoice.amount,
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
        "payment_link": invoice.payment_link,
        **changes,
    }


def appointment_form(appointment: Appointment, **changes) -> dict:
    starts_at = timezone.localtime(changes.pop("starts_at", appointment.starts_at))
    return {
        "lead": appointment.lead_id,
        "title": appointment.title,
        "location": appointment.location,
        "starts_at_0": starts_at.date().isoformat(),
        "starts_at_1": starts_at.time().isoformat(timespec="seconds"),
        "status": appointment.status,
        **changes,
    }


def test_paying_an_invoice_in_the_admin_cancels_the_waiting_notice(
    member_client, organization
):
    invoice = InvoiceFactory(
        organization=organization, due_date=timezone.localdate() - dt.timedelta(3)
    )
    queue_dunning()
    notice = CommunicationLog.objects.get(dedupe_key__startswith=f"inv{invoice.pk}-")
    assert notice.status == LogStatus.PENDING

    response = member_client.post(
        reverse("admin:automations_invoice_change", args=[invoice.pk]),
        invoice_form(invoice, status=Invoice.Status.PAID),
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_at is not None
    notice.refresh_from_db()
    assert notice.status == LogStatus.CANCELLED


def test_a_paid_invoice_cannot_be_reopened_in_the_admin(member_client, organization):
    invoice = InvoiceFactory(
        organization=organization,
        status=Invoice.Status.PAID,
        paid_at=timezone.now(),
    )

    response = member_client.post(
        reverse("admin:automations_invoice_change", args=[invoice.pk]),
        invoice_form(invoice, status=Invoice.Status.OPEN),
    )

    assert response.status_code == 200
    assert "This invoice is already paid." in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_moving_an_appointment_in_the_admin_cancels_the_old_reminder(
    member_client, organization
):
    appointment = AppointmentFactory(
        organization=organization, starts_at=timezone.now() + dt.timedelta(hours=2)
    )
    queue_reminders()
    reminder = CommunicationLog.objects.get(
        dedupe_key__startswith=f"appt{appointment.pk}-"
    )
    later = appointment.starts_at + dt.timedelta(days=2)

    response = member_client.post(
        reverse("admin:automations_appointment_change", args=[appointment.pk]),
        appointment_form(appointment, starts_at=later),
    )

    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.starts_at == later.replace(microsecond=0)
    reminder.refresh_from_db()
    assert reminder.status == LogStatus.CANCELLED


def test_cancelling_an_appointment_in_the_admin_cancels_its_reminder(
    member_client, organization
):
    appointment = AppointmentFactory(
        organization=organization, starts_at=timezone.now() + dt.timedelta(hours=2)
    )
    queue_reminders()

    response = member_client.post(
        reverse("admin:automations_appointment_change", args=[appointment.pk]),
        appointment_form(appointment, status=Appointment.Status.CANCELLED),
    )

    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert set(
        CommunicationLog.objects.filter(
            dedupe_key__startswith=f"appt{appointment.pk}-"
        ).values_list("status", flat=True)
    ) == {LogStatus.CANCELLED}


def test_a_cancelled_appointment_cannot_be_moved_in_the_admin(
    member_client, organization
):
    appointment = AppointmentFactory(
        organization=organization, status=Appointment.Status.CANCELLED
    )

    response = member_client.post(
        reverse("admin:automations_appointment_change", args=[appointment.pk]),
        appointment_form(
            appointment, starts_at=appointment.starts_at + dt.timedelta(days=1)
        ),
    )

    assert response.status_code == 200
    assert "it can no longer be moved or changed" in response.content.decode()
