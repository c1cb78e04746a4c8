"""A dunning notice and an appointment reminder by SMS, through the organization's
Twilio account and the real adapter to the fake Twilio, made delivered or failed by
its signed status callbacks."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone

from automations.selectors import dunning_due, reminders_due
from automations.services.dunning import dunning_send
from automations.services.reminders import reminders_send
from messaging.adapters import dispatch_adapters_forget
from messaging.models import CommunicationLog, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.api.test_twilio_webhooks import post
from tests.automations.factories import AppointmentFactory, InvoiceFactory
from tests.support.twilio import PUBLIC_URL
from tests.vendors.factories import VendorAccountFactory
from vendors.registry import reset_adapters
from vendors.twilio_fake import TwilioFake

pytestmark = pytest.mark.django_db
ACCOUNT_SID = "AC" + "8" * 32
ACCOUNT_TOKEN = "8b" * 16
SENDER = "+15005550008"


@pytest.fixture
def fake(settings) -> Iterator[TwilioFake]:
    """Twilio serving one organization's account; automations write by SMS."""
    fake = TwilioFake(account_sid=ACCOUNT_SID, auth_token=ACCOUNT_TOKEN).start()
    settings.VENDOR_DEFAULT = "simulator"
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_STATUS_CALLBACK_URL = PUBLIC_URL
    settings.AUTOMATIONS_DUNNING_CHANNEL = "sms"
    settings.AUTOMATIONS_REMINDER_CHANNEL = "sms"
    reset_adapters()
    dispatch_adapters_forget()
    yield fake
    reset_adapters()
    dispatch_adapters_forget()
    fake.stop()


def with_twilio_account(organization) -> None:
    VendorAccountFactory(
        organization=organization,
        account_id=ACCOUNT_SID,
        sender=SENDER,
        secrets={"auth_token": ACCOUNT_TOKEN},
    )


def send_and_report(
    fake: TwilioFake, log: CommunicationLog, status: str, error_code: str = ""
) -> None:
    """Send the log's dispatch as the send task would, then Twilio's callback."""
    logs_send_due(dispatch_id=log.dispatch_id)
    [sent] = [message for message in fake.sent if message.to == log.recipient]
    answer = post(*fake.status_callback(sent, status, error_code=error_code))
    assert answer.status_code == 202
    receipts_process()


def test_a_dunning_notice_by_sms_reaches_twilio_and_is_delivered(fake, clock):
    # given an invoice a day overdue, of an organization with a Twilio account
    invoice = InvoiceFactory(due_date=timezone.localdate() - dt.timedelta(days=1))
    with_twilio_account(invoice.organization)

    # when the daily scan writes the notice, it is sent, and Twilio delivers it
    for org, jobs in dunning_due(today=timezone.localdate()).items():
        dunning_send(org_id=org, jobs=jobs)
    log = CommunicationLog.objects.get(dedupe_key__startswith=f"inv{invoice.pk}-")
    send_and_report(fake, log, "delivered")

    # then the person got it once, from the organization's number, and it is
    # delivered
    [sent] = fake.sent
    assert (sent.to, sent.sender) == (log.recipient, SENDER)
    assert invoice.payment_link in sent.body
    assert fake.requests_by_send_id == {log.send_id: 1}
    log.refresh_from_db()
    assert (log.status, log.vendor) == (LogStatus.DELIVERED, "twilio")


def test_an_appointment_reminder_by_sms_that_is_undelivered_fails(fake, clock):
    # given an appointment in two hours, of an organization with a Twilio account
    appointment = AppointmentFactory(starts_at=timezone.now() + dt.timedelta(hours=2))
    with_twilio_account(appointment.organization)

    # when the hourly scan writes its reminder, it is sent, and the carrier
    # cannot deliver it
    for org, jobs in reminders_due(now=timezone.now()).items():
        reminders_send(org_id=org, jobs=jobs)
    log = CommunicationLog.objects.get(dedupe_key__startswith=f"appt{appointment.pk}-")
    send_and_report(fake, log, "undelivered", error_code="30003")

    # then it was sent once and failed with Twilio's code
    assert fake.requests_by_send_id == {log.send_id: 1}
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "30003")
