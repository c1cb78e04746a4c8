"""Daily snapshots: figures equal a direct count, and a rerun replaces the day."""

import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from automations.models import Appointment, DailySnapshot, Invoice
from automations.services.snapshots import day_bounds, snapshot_compute
from automations.tasks import snapshot, snapshot_all
from crm.models import Lead
from messaging.models import CommunicationLog
from tests.automations.factories import AppointmentFactory, InvoiceFactory
from tests.crm.factories import LeadFactory, OrganizationFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def a_week_of_activity(clock, organization, rng: random.Random) -> None:
    """Leads, messages, appointments and invoices spread over seven days."""
    dispatch = DispatchFactory(organization=organization)
    start = timezone.now()
    for day_index in range(7):
        for _ in range(rng.randint(2, 6)):
            clock.shift(dt.timedelta(minutes=rng.randint(10, 200)))
            lead = LeadFactory(organization=organization)
            log = CommunicationLogFactory(dispatch=dispatch, lead=lead)
            moment = timezone.now()
            fate = rng.choice(["pending", "sent", "delivered", "failed", "late"])
            if fate != "pending":
                log.sent_at = moment
            if fate == "delivered":
                log.status, log.delivered_at = (
                    "delivered",
                    moment + dt.timedelta(minutes=rng.randint(1, 90)),
                )
            if fate in ("failed", "late"):
                log.status, log.failed_at = (
                    "failed",
                    moment + dt.timedelta(hours=rng.choice([1, 30])),
                )
            log.save()
            AppointmentFactory(
                organization=organization,
                lead=lead,
                starts_at=moment + dt.timedelta(hours=rng.randint(1, 72)),
                status=rng.choice(list(Appointment.Status.values)),
            )
            invoice = InvoiceFactory(
                organization=organization,
                lead=lead,
                amount=Decimal(rng.randint(100, 99_999)) / 100,
                due_date=timezone.localdate() - dt.timedelta(days=rng.randint(-3, 5)),
            )
            if rng.random() < 0.5:
                Invoice.objects.filter(pk=invoice.pk).update(
                    status=Invoice.Status.PAID,
                    paid_at=moment + dt.timedelta(hours=rng.randint(0, 60)),
                )
            elif rng.random() < 0.2:
                Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID)
        clock.move_to(start + DAY * (day_index + 1))


def counted_directly(organization, day: dt.date) -> dict:
    """The KPIs by walking every row in Python: no query shared with the service."""
    start, end = day_bounds(day)

    def within(moment):
        return moment is not None and start <= moment < end

    leads = [
        lead for lead in Lead.objects.all() if lead.organization_id == organization.pk
    ]
    logs = [
        log
        for log in CommunicationLog.objects.select_related("dispatch")
        if log.dispatch.organization_id == organization.pk
    ]
    invoices = [
        i for i in Invoice.objects.all() if i.organization_id == organization.pk
    ]
    delivered = sum(within(log.delivered_at) for log in logs)
    failed = sum(within(log.failed_at) for log in logs)
    return {
        "leads": sum(lead.created_at < end for lead in leads),
        "new_leads": sum(within(lead.created_at) for lead in leads),
        "messages_sent": sum(within(log.sent_at) for log in logs),
        "messages_delivered": delivered,
        "messages_failed": failed,
        "delivery_rate": (
            (Decimal(delivered) / (delivered + failed)).quantize(Decimal("0.0001"))
            if delivered + failed
            else None
        ),
        "appointments": sum(
            within(a.starts_at) and a.status != "cancelled"
            for a in Appointment.objects.all()
            if a.organization_id == organization.pk
        ),
        "revenue_collected": sum(
            (i.amount for i in invoices if i.status == "paid" and within(i.paid_at)),
            Decimal("0"),
        ),
        "overdue_amount": sum(
            (
                i.amount
                for i in invoices
                if i.due_date < day
                and (i.status == "open" or (i.status == "paid" and i.paid_at >= end))
            ),
            Decimal("0"),
        ),
    }


def test_a_snapshot_equals_a_direct_count_for_every_day(clock):
    organization, other = OrganizationFactory(), OrganizationFactory()
    rng = random.Random(4)
    a_week_of_activity(clock, organization, rng)
    a_week_of_activity(clock, other, rng)
    first = timezone.localdate() - 14 * DAY

    seen = set()
    for offset in range(16):
        day = first + offset * DAY
        row = snapshot_compute(organization_id=organization.pk, day=day)
        expected = counted_directly(organization, day)
        assert {name: getattr(row, name) for name in expected} == expected, day
        seen.update(name for name, value in expected.items() if value)

    # Every figure was non-zero on some day: the comparison tested each of them.
    assert seen == set(expected)

    assert DailySnapshot.objects.filter(organization=organization).count() == 16
    assert (
        sum(
            row.messages_sent
            for row in DailySnapshot.objects.filter(organization=organization)
        )
        == CommunicationLog.objects.filter(
            dispatch__organization=organization, sent_at__isnull=False
        ).count()
    )


def test_running_a_day_again_replaces_its_snapshot(clock):
    organization = OrganizationFactory()
    LeadFactory(organization=organization)
    today = timezone.localdate()
    first = snapshot_compute(organization_id=organization.pk, day=today)

    LeadFactory(organization=organization)
    second = snapshot_compute(organization_id=organization.pk, day=today)

    assert (first.new_leads, second.new_leads) == (1, 2)
    assert first.pk == second.pk
    assert DailySnapshot.objects.get(organization=organization).new_leads == 2


def test_the_nightly_task_snapshots_yesterday_for_every_organization(clock, eager):
    organizations = OrganizationFactory.create_batch(3)
    yesterday = timezone.localdate() - DAY

    result = snapshot_all.apply()
    snapshot.apply(args=[organizations[0].pk, yesterday.isoformat()])

    assert result.get() == 3
    assert set(DailySnapshot.objects.values_list("organization_id", "date")) == {
        (organization.pk, yesterday) for organization in organizations
    }


def test_run_snapshots_fills_a_date_backfills_once_and_refuses_a_bad_date(clock):
    organization = OrganizationFactory()
    today = timezone.localdate()

    call_command("run_snapshots", "--date", "2026-01-15", stdout=io.StringIO())
    call_command("run_snapshots", "--backfill", "3", stdout=io.StringIO())
    call_command("run_snapshots", "--backfill", "3", stdout=io.StringIO())

    days = set(
        DailySnapshot.objects.filter(organization=organization).values_list(
            "date", flat=True
        )
    )
    assert days == {dt.date(2026, 1, 15)} | {today - n * DAY for n in (1, 2, 3)}
    with pytest.raises(CommandError):
        call_command("run_snapshots", "--date", "15/01/2026")
