"""A lead's story for its admin page: messages with their receipts, replies,
consent changes, enrollments, appointments and invoices, newest first.

Here because this app may read every other. One query per kind of event, whatever
the number of rows: the page of a lead with years of messages costs what a new
lead's does.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch

from automations.models import Appointment, Enrollment, Invoice
from crm.models import Lead, Suppression
from messaging.models import CommunicationLog, DeliveryReceipt, InboundReply

# Rows read per kind of event, and entries shown: a page, not an archive (the
# message list's lead filter has the rest).
TIMELINE_LIMIT = 100
# The admin's record of a lifted opt-out starts so (crm.admin.leads.lift_opt_out).
OPT_OUT_LIFTED = "Lifted "


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a lead's story: when, what kind, a title and a detail line."""

    at: datetime
    kind: str
    title: str
    detail: str = ""


def _messages(lead: Lead) -> list[TimelineEntry]:
    logs = (
        CommunicationLog.objects.filter(lead=lead)
        .select_related("dispatch")
        .prefetch_related(
            Prefetch("receipts", queryset=DeliveryReceipt.objects.order_by("pk"))
        )
        .order_by("-created_at", "-pk")[:TIMELINE_LIMIT]
    )
    entries = []
    for log in logs:
        reason = log.error_code or log.skip_reason
        problem = f" ({reason})" if reason else ""
        entries.append(
            TimelineEntry(
                at=log.created_at,
                kind="message",
                title=(
                    f"{log.get_channel_display()} message, "
                    f"{log.get_status_display().lower()}{problem}: {log.dispatch.label}"
                ),
                detail=log.body,
            )
        )
        for receipt in log.receipts.all():
            code = f" ({receipt.error_code})" if receipt.error_code else ""
            entries.append(
                TimelineEntry(
                    at=receipt.occurred_at or receipt.received_at,
                    kind="receipt",
                    title=f"Receipt: {receipt.get_status_display().lower()}{code}",
                    detail=f"for the {log.get_channel_display()} message of "
                    f"{log.created_at:%Y-%m-%d %H:%M}",
                )
            )
    return entries


def _contacts(lead: Lead) -> list[str]:
    return [*(lead.phones or []), *(lead.emails or [])]


def _replies(lead: Lead) -> list[TimelineEntry]:
    contacts = _contacts(lead)
    if not contacts:
        return []
    replies = InboundReply.objects.filter(
        organization_id=lead.organization_id, sender__in=contacts
    ).order_by("-received_at", "-pk")[:TIMELINE_LIMIT]
    return [
        TimelineEntry(
            at=reply.received_at,
            kind="consent" if reply.action in ("opt_out", "opt_in") else "reply",
            title=f"Replied by {reply.get_channel_display()}: "
            f"{reply.get_action_display().lower()}",
            detail=reply.body,
        )
        for reply in replies
    ]


def _suppressions(lead: Lead) -> list[TimelineEntry]:
    contacts = _contacts(lead)
    if not contacts:
        return []
    suppressions = Suppression.objects.filter(
        organization_id=lead.organization_id, address__in=contacts
    ).order_by("-created_at")[:TIMELINE_LIMIT]
    return [
        TimelineEntry(
            at=suppression.created_at,
            kind="consent",
            title=f"{suppression.get_channel_display()} address suppressed: "
            f"{suppression.get_reason_display().lower()}",
            detail=suppression.source,
        )
        for suppression in suppressions
    ]


def _opt_outs_lifted(lead: Lead) -> list[TimelineEntry]:
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Lead),
        object_id=str(lead.pk),
        change_message__startswith=OPT_OUT_LIFTED,
    ).order_by("-action_time")[:TIMELINE_LIMIT]
    return [
        TimelineEntry(
            at=entry.action_time,
            kind="consent",
            title="Opt-out lifted in the admin",
            detail=entry.change_message,
        )
        for entry in entries
    ]


def _enrollments(lead: Lead) -> list[TimelineEntry]:
    enrollments = (
        Enrollment.objects.filter(lead=lead)
        .select_related("sequence")
        .order_by("-enrolled_at")[:TIMELINE_LIMIT]
    )
    entries = []
    for enrollment in enrollments:
        entries.append(
            TimelineEntry(
                at=enrollment.enrolled_at,
                kind="enrollment",
                title=f"Enrolled in {enrollment.sequence.name}",
                detail=f"{enrollment.get_status_display()}, "
                f"step {enrollment.current_step}",
            )
        )
        if enrollment.finished_at:
            reason = enrollment.get_exit_reason_display() or "finished"
            entries.append(
                TimelineEntry(
                    at=enrollment.finished_at,
                    kind="enrollment",
                    title=f"Left {enrollment.sequence.name}: {reason.lower()}",
                )
            )
    return entries


def _appointments(lead: Lead) -> list[TimelineEntry]:
    appointments = Appointment.objects.filter(lead=lead).order_by("-created_at")
    return [
        TimelineEntry(
            at=appointment.created_at,
            kind="appointment",
            title=f"Appointment booked: {appointment.title}",
            detail=f"for {appointment.starts_at:%Y-%m-%d %H:%M}, "
            f"{appointment.get_status_display().lower()}",
        )
        for appointment in appointments[:TIMELINE_LIMIT]
    ]


def _invoices(lead: Lead) -> list[TimelineEntry]:
    entries = []
    for invoice in Invoice.objects.filter(lead=lead).order_by("-created_at")[
        :TIMELINE_LIMIT
    ]:
        entries.append(
            TimelineEntry(
                at=invoice.created_at,
                kind="invoice",
                title=f"{invoice}: {invoice.amount} {invoice.currency}",
                detail=f"due {invoice.due_date}, {invoice.get_status_display()}",
            )
        )
        if invoice.paid_at:
            entries.append(
                TimelineEntry(
                    at=invoice.paid_at, kind="invoice", title=f"{invoice} paid"
                )
            )
    return entries


def lead_timeline(*, lead: Lead) -> list[TimelineEntry]:
    """The lead's latest events of every kind, newest first, at most TIMELINE_LIMIT.

    One query per kind of event whatever the lead's history, receipts prefetched
    with their messages.
    """
    entries = [
        *_messages(lead),
        *_replies(lead),
        *_suppressions(lead),
        *_opt_outs_lifted(lead),
        *_enrollments(lead),
        *_appointments(lead),
        *_invoices(lead),
    ]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:TIMELINE_LIMIT]
