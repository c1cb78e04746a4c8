"""Reads for the automations: what is due now, and the series charts draw."""

from datetime import date, datetime, timedelta

from django.conf import settings

from automations.dunning_rules import dunning_key, threshold_reached
from automations.models import (
    Appointment,
    AutomationDispatch,
    CampaignHourlyStat,
    DailySnapshot,
    Invoice,
)
from automations.reminder_rules import (
    KINDS,
    reminder_key,
    reminder_kind_due,
    reminder_message,
)
from campaigns.personalization import format_amount
from messaging.models import CommunicationLog


def sent_keys(*, kind: str, keys: list[str]) -> set[str]:
    """Which of these dedupe keys already have a log in a dispatch of this kind."""
    if not keys:
        return set()
    return set(
        CommunicationLog.objects.filter(
            dispatch__automation__kind=kind, dedupe_key__in=keys
        ).values_list("dedupe_key", flat=True)
    )


def reminders_due(*, now: datetime) -> dict[int, list[dict]]:
    """Reminder jobs due at `now` and not yet sent, by organization id.

    A job: {org_id, contact_id, appointment_id, message, scheduled_for,
    reminder_type, starts_at}; `scheduled_for` is the reminder's own moment (24 h or
    3 h before), `starts_at` lets the job see a reschedule that happened since.
    """
    horizon = now + max(kind.before for kind in KINDS)
    appointments = (
        Appointment.objects.filter(
            status=Appointment.Status.SCHEDULED,
            starts_at__gt=now,
            starts_at__lte=horizon,
        )
        .select_related("lead")
        .order_by("pk")
    )
    candidates = []
    for appointment in appointments.iterator(chunk_size=2000):
        kind = reminder_kind_due(starts_at=appointment.starts_at, now=now)
        if kind is not None:
            key = reminder_key(
                appointment_id=appointment.pk,
                kind=kind.name,
                starts_at=appointment.starts_at,
            )
            candidates.append((key, kind, appointment))
    sent = sent_keys(
        kind=AutomationDispatch.Kind.REMINDERS, keys=[key for key, _, _ in candidates]
    )
    jobs: dict[int, list[dict]] = {}
    for key, kind, appointment in candidates:
        if key in sent:
            continue
        jobs.setdefault(appointment.organization_id, []).append(
            {
                "org_id": appointment.organization_id,
                "contact_id": appointment.lead_id,
                "appointment_id": appointment.pk,
                "message": reminder_message(
                    appointment=appointment, lead=appointment.lead
                ),
                "scheduled_for": (appointment.starts_at - kind.before).isoformat(),
                "reminder_type": kind.name,
                "starts_at": appointment.starts_at.isoformat(),
            }
        )
    return jobs


def dunning_due(*, today: date) -> dict[int, list[dict]]:
    """Dunning jobs due `today` and not yet sent, by organization id.

    A job: {org_id, contact_id, invoice_id, amount, currency, days_overdue,
    threshold, payment_link}.
    """
    thresholds = settings.AUTOMATIONS_DUNNING_THRESHOLDS_DAYS
    if not thresholds:
        return {}
    invoices = Invoice.objects.filter(
        status=Invoice.Status.OPEN,
        due_date__lte=today - timedelta(days=min(thresholds)),
    ).order_by("pk")
    candidates = []
    for invoice in invoices.iterator(chunk_size=2000):
        days = (today - invoice.due_date).days
        threshold = threshold_reached(days_overdue=days, thresholds=thresholds)
        candidates.append((invoice, days, threshold))
    keys = [
        dunning_key(invoice_id=invoice.pk, threshold=days)
        for invoice, _, _ in candidates
        for days in thresholds
    ]
    sent = sent_keys(kind=AutomationDispatch.Kind.DUNNING, keys=keys)
    jobs: dict[int, list[dict]] = {}
    for invoice, days, threshold in candidates:
        # A threshold already passed by a later notice is not sent after it.
        if any(
            dunning_key(invoice_id=invoice.pk, threshold=later) in sent
            for later in thresholds
            if later >= threshold
        ):
            continue
        jobs.setdefault(invoice.organization_id, []).append(
            {
                "org_id": invoice.organization_id,
                "contact_id": invoice.lead_id,
                "invoice_id": invoice.pk,
                "amount": format_amount(invoice.amount),
                "currency": invoice.currency,
                "days_overdue": days,
                "threshold": threshold,
                "payment_link": invoice.payment_link,
            }
        )
    return jobs


def snapshots_for(*, organization_id: int, since: date, until: date):
    """The organization's daily snapshots from `since` to `until`, oldest first."""
    return DailySnapshot.objects.filter(
        organization_id=organization_id, date__gte=since, date__lte=until
    ).order_by("date")


def campaign_hourly_series(*, campaign_id: int, since: datetime, until: datetime):
    """(hour, sent, delivered, failed) of a campaign, oldest first, for a chart."""
    return (
        CampaignHourlyStat.objects.filter(
            campaign_id=campaign_id, hour__gte=since, hour__lt=until
        )
        .order_by("hour")
        .values_list("hour", "sent", "delivered", "failed")
    )
