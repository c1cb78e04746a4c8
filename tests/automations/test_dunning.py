"""Dunning: a notice at each overdue threshold, once, and none after payment."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import AutomationDispatch, Invoice
from automations.selectors import dunning_due
from automations.services.dunning import (
    InvoiceStateError,
    dunning_send,
    invoice_mark_paid,
)
from messaging.models import CommunicationLog, LogStatus
from tests.automations.factories import InvoiceFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def scan() -> int:
    jobs = dunning_due(today=timezone.localdate())
    return sum(dunning_send(org_id=org, jobs=batch) for org, batch in jobs.items())


def notices(invoice: Invoice) -> list[tuple[int, dt.date]]:
    """(threshold, day sent) of each notice of the invoice, oldest first."""
    logs = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"inv{invoice.pk}-"
    ).order_by("created_at")
    return [
        (int(log.dedupe_key.split("-d")[1]), timezone.localdate(log.created_at))
        for log in logs
    ]


def run_daily(clock, *, days: int, twice: bool = False) -> None:
    for _ in range(days):
        clock.shift(DAY)
        scan()
        if twice:
            scan()


def test_a_notice_at_each_threshold_once_even_when_each_run_is_doubled(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate())

    run_daily(clock, days=30, twice=True)

    due = invoice.due_date
    assert notices(invoice) == [
        (days, due + dt.timedelta(days=days)) for days in (1, 3, 7, 14)
    ]
    body = CommunicationLog.objects.get(dedupe_key=f"inv{invoice.pk}-d7").body
    assert "120 USD" in body
    assert "7 days overdue" in body
    assert invoice.payment_link in body


def test_the_job_carries_the_documented_payload(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate() - 4 * DAY)

    [job] = dunning_due(today=timezone.localdate())[invoice.organization_id]

    assert job == {
        "org_id": invoice.organization_id,
        "contact_id": invoice.lead_id,
        "invoice_id": invoice.pk,
        "amount": "120",
        "currency": "USD",
        "days_overdue": 4,
        "threshold": 3,
        "payment_link": invoice.payment_link,
    }


def test_nothing_goes_after_the_invoice_is_paid(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate())
    run_daily(clock, days=4)
    assert [days for days, _ in notices(invoice)] == [1, 3]

    invoice_mark_paid(invoice=invoice)
    run_daily(clock, days=30)

    assert [days for days, _ in notices(invoice)] == [1, 3]
    with pytest.raises(InvoiceStateError):
        invoice_mark_paid(invoice=invoice)


def test_a_notice_waiting_to_be_sent_is_cancelled_by_payment(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate() - DAY)
    scan()
    [waiting] = CommunicationLog.objects.filter(dedupe_key__startswith="inv")

    invoice_mark_paid(invoice=invoice)

    waiting.refresh_from_db()
    assert waiting.status == LogStatus.CANCELLED


def test_a_job_for_an_invoice_paid_after_the_scan_sends_nothing(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate() - DAY)
    jobs = dunning_due(today=timezone.localdate())
    invoice_mark_paid(invoice=invoice)

    assert (
        dunning_send(org_id=invoice.organization_id, jobs=jobs[invoice.organization_id])
        == 0
    )


def test_a_late_run_sends_the_latest_threshold_only(clock):
    invoice = InvoiceFactory(due_date=timezone.localdate() - 8 * DAY)
    void = InvoiceFactory(
        due_date=timezone.localdate() - 8 * DAY, status=Invoice.Status.VOID
    )

    scan()
    run_daily(clock, days=10)

    assert [days for days, _ in notices(invoice)] == [7, 14]
    assert notices(void) == []


def test_the_thresholds_are_a_setting(clock, settings):
    settings.AUTOMATIONS_DUNNING_THRESHOLDS_DAYS = [2, 5]
    invoice = InvoiceFactory(due_date=timezone.localdate())

    run_daily(clock, days=10)

    assert [days for days, _ in notices(invoice)] == [2, 5]
    dispatch = AutomationDispatch.objects.get(kind=AutomationDispatch.Kind.DUNNING)
    assert dispatch.dispatch.logs.count() == 2
