"""Daily KPI snapshots: one row per organization and day, recomputed in place."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from automations.models import Appointment, DailySnapshot, Invoice
from crm.models import Lead
from messaging.models import CommunicationLog


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day's start and the next day's start, in settings.TIME_ZONE."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def snapshot_compute(*, organization_id: int, day: date) -> DailySnapshot:
    """Count the day's KPIs and store them, replacing any earlier snapshot of it.

    Messages count by when each event happened: sent (accepted by the vendor),
    delivered and failed that day; the delivery rate is delivered over delivered plus
    failed. Revenue is what invoices paid that day amount to; the overdue amount is
    what was open and past due at the end of the day (an invoice paid later still
    counts as overdue on the days before its payment).
    """
    start, end = day_bounds(day)
    leads = Lead.objects.filter(organization_id=organization_id).aggregate(
        total=Count("id", filter=Q(created_at__lt=end)),
        new=Count("id", filter=Q(created_at__gte=start, created_at__lt=end)),
    )
    logs = CommunicationLog.objects.filter(
        dispatch__organization_id=organization_id
    ).aggregate(
        sent=Count("id", filter=Q(sent_at__gte=start, sent_at__lt=end)),
        delivered=Count("id", filter=Q(delivered_at__gte=start, delivered_at__lt=end)),
        failed=Count("id", filter=Q(failed_at__gte=start, failed_at__lt=end)),
    )
    appointments = (
        Appointment.objects.filter(
            organization_id=organization_id, starts_at__gte=start, starts_at__lt=end
        )
        .exclude(status=Appointment.Status.CANCELLED)
        .count()
    )
    invoices = _invoice_sums(organization_id=organization_id, day=day)
    finished = logs["delivered"] + logs["failed"]
    rate = (
        (Decimal(logs["delivered"]) / finished).quantize(Decimal("0.0001"))
        if finished
        else None
    )
    snapshot, _ = DailySnapshot.objects.update_or_create(
        organization_id=organization_id,
        date=day,
        defaults={
            "leads": leads["total"],
            "new_leads": leads["new"],
            "messages_sent": logs["sent"],
            "messages_delivered": logs["delivered"],
            "messages_failed": logs["failed"],
            "delivery_rate": rate,
            "appointments": appointments,
            "revenue_collected": invoices["revenue"] or Decimal("0"),
            "overdue_amount": invoices["overdue"] or Decimal("0"),
            "computed_at": timezone.now(),
        },
    )
    return snapshot


def _invoice_sums(*, organization_id: int, day: date) -> dict:
    """Revenue paid during the day, and the amount open and past due at its end."""
    start, end = day_bounds(day)
    return Invoice.objects.filter(organization_id=organization_id).aggregate(
        revenue=Sum(
            "amount",
            filter=Q(status=Invoice.Status.PAID, paid_at__gte=start, paid_at__lt=end),
        ),
        overdue=Sum(
            "amount",
            filter=Q(due_date__lt=day)
            & (
                Q(status=Invoice.Status.OPEN)
                | Q(status=Invoice.Status.PAID, paid_at__gte=end)
            ),
        ),
    )
