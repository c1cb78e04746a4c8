"""A dunning notice and an appointment reminder by email, through the real SendGrid
adapter to the fake SendGrid, made delivered or failed by its signed events."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automations.selectors import dunning_due, reminders_due
from automations.services.dunning import dunning_send
from automations.services.reminders import reminders_send
from crm.models import Suppression
from messaging.models import CommunicationLog, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.automations.factories import AppointmentFactory, InvoiceFactory
from vendors.registry import reset_adapters
from vendors.sendgrid_fake import SendGridFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings) -> Iterator[SendGridFake]:
    """The fake as the vendor of every email; automations write by email."""
    fake = SendGridFake().start()
    settings.VENDOR_DEFAULT = "sendgrid"
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_URL": fake.api_url,
    }
    settings.DEFAULT_FROM_EMAIL = "billing@crm.example.com"
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = fake.public_key
    settings.AUTOMATIONS_DUNNING_CHANNEL = "email"
    settings.AUTOMATIONS_REMINDER_CHANNEL = "email"
    reset_adapters()
    yield fake
    reset_adapters()
    fake.stop()


def send_and_report(fake: SendGridFake, log: CommunicationLog, kind: str) -> None:
    """Send the log's dispatch as the send task would, then post SendGrid's event."""
    logs_send_due(dispatch_id=log.dispatch_id)
    [sent] = [s for s in fake.sent if s.send_id == log.send_id]
    body, headers = fake.signed([fake.event(sent, kind)])
    response = APIClient().post(
        "/api/webhooks/sendgrid/events",
        body,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=headers[
            "X-Twilio-Email-Event-Webhook-Signature"
        ],
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=headers[
            "X-Twilio-Email-Event-Webhook-Timestamp"
        ],
    )
    assert response.status_code == 202
    receipts_process()


def test_a_dunning_notice_by_email_reaches_sendgrid_and_is_delivered(fake, clock):
    # given an invoice a day overdue
    invoice = InvoiceFactory(due_date=timezone.localdate() - dt.timedelta(days=1))

    # when the daily scan writes the notice, it is sent, and SendGrid delivers it
    for org, jobs in dunning_due(today=timezone.localdate()).items():
        dunning_send(org_id=org, jobs=jobs)
    log = CommunicationLog.objects.get(dedupe_key__startswith=f"inv{invoice.pk}-")
    send_and_report(fake, log, "delivered")

    # then the person got it once, by email, and it is delivered
    [sent] = fake.sent
    assert (sent.to, sent.from_email) == (log.recipient, "billing@crm.example.com")
    assert sent.subject.endswith("is overdue")
    assert invoice.payment_link in sent.body
    assert fake.requests_by_send_id == {log.send_id: 1}
    log.refresh_from_db()
    assert log.status == LogStatus.DELIVERED


def test_an_appointment_reminder_by_email_that_bounces_fails_and_suppresses(
    fake, clock
):
    # given an appointment in two hours
    appointment = AppointmentFactory(starts_at=timezone.now() + dt.timedelta(hours=2))

    # when the hourly scan writes its reminder, it is sent, and it bounces
    for org, jobs in reminders_due(now=timezone.now()).items():
        reminders_send(org_id=org, jobs=jobs)
    log = CommunicationLog.objects.get(dedupe_key__startswith=f"appt{appointment.pk}-")
    send_and_report(fake, log, "bounce")

    # then it failed as a hard bounce and the address is suppressed
    [sent] = fake.sent
    assert "Consultation" in sent.body
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "bounce")
    assert Suppression.objects.get().reason == "hard_bounce"
