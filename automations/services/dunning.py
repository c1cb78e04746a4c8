"""Dunning: an open invoice past its due date gets a notice at each threshold.

Thresholds are days overdue (settings.AUTOMATIONS_DUNNING_THRESHOLDS_DAYS, default 1,
3, 7, 14). Each is sent once per invoice (the log's dedupe key names invoice and
threshold); a run that comes late sends only the latest threshold reached, not a
burst of the ones it missed; nothing goes once the invoice is paid or void.
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations.dunning_rules import dunning_key, dunning_message
from automations.models import AutomationDispatch, Invoice
from automations.services.outbox import (
    automation_dispatch_id,
    lead_message,
    messages_queue,
)
from crm.models import Organization
from messaging.services.logs import logs_cancel_pending


class InvoiceStateError(Exception):
    """The invoice's status does not allow what was asked."""


EDITABLE_FIELDS = frozenset(
    {"lead", "number", "amount", "currency", "due_date", "payment_link"}
)


def invoice_create(*, organization: Organization, **fields: Any) -> Invoice:
    """A new open invoice; ValidationError names the fields at fault."""
    invoice = Invoice(organization=organization)
    _set(invoice, fields)
    invoice.save()
    return invoice


def invoice_update(*, invoice_id: int, **fields: Any) -> Invoice:
    """Change an open invoice's given fields, and only those.

    The row is re-read under the lock a payment takes, so a PATCH never reopens
    an invoice paid or voided meanwhile (InvoiceStateError) nor writes back a
    column someone else changed. Raises Invoice.DoesNotExist if it is gone.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status != Invoice.Status.OPEN:
            raise InvoiceStateError(
                f"the invoice is {invoice.status}; only an open invoice changes"
            )
        _set(invoice, fields)
        invoice.save(update_fields=[*fields, "updated_at"])
    return invoice


def _set(invoice: Invoice, fields: dict[str, Any]) -> None:
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on an invoice")
    for name, value in fields.items():
        setattr(invoice, name, value)
    invoice.full_clean(exclude=["organization"])


def invoice_mark_paid(*, invoice: Invoice) -> Invoice:
    """Paid: no further notice, and none still waiting to be sent."""
    return _close(invoice, Invoice.Status.PAID)


def invoice_void(*, invoice: Invoice) -> Invoice:
    return _close(invoice, Invoice.Status.VOID)


def _close(invoice: Invoice, status: str) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            raise InvoiceStateError(f"the invoice is already {invoice.status}")
        invoice.status = status
        invoice.paid_at = timezone.now() if status == Invoice.Status.PAID else None
        invoice.save(update_fields=["status", "paid_at", "updated_at"])
        dispatch_id = (
            AutomationDispatch.objects.filter(
                organization_id=invoice.organization_id,
                kind=AutomationDispatch.Kind.DUNNING,
            )
            .values_list("dispatch_id", flat=True)
            .first()
        )
        if dispatch_id is not None:
            keys = [
                dunning_key(invoice_id=invoice.pk, threshold=days)
                for days in settings.AUTOMATIONS_DUNNING_THRESHOLDS_DAYS
            ]
            logs_cancel_pending(dispatch_id=dispatch_id, dedupe_keys=keys)
    return invoice


def dunning_send(*, org_id: int, jobs: list[dict]) -> int:
    """Create the jobs' notices (once per invoice and threshold) and have them sent;
    return how many were new. An invoice paid or voided since the scan gets none."""
    channel = settings.AUTOMATIONS_DUNNING_CHANNEL
    dispatch_id = automation_dispatch_id(
        organization_id=org_id, kind=AutomationDispatch.Kind.DUNNING, channel=channel
    )
    with transaction.atomic():
        # Locked, so a payment recorded meanwhile either comes first (and the
        # invoice is skipped) or waits and then cancels what this created.
        invoices = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("lead")
            .filter(
                pk__in=[job["invoice_id"] for job in jobs],
                organization_id=org_id,
                status=Invoice.Status.OPEN,
            )
            .order_by("pk")
            .in_bulk()
        )
        messages = []
        for job in jobs:
            invoice = invoices.get(job["invoice_id"])
            if invoice is None:
                continue
            name = (invoice.lead.name or "").strip()
            messages.append(
                lead_message(
                    lead=invoice.lead,
                    channel=channel,
                    dedupe_key=dunning_key(
                        invoice_id=invoice.pk, threshold=job["threshold"]
                    ),
                    body=dunning_message(
                        job=job,
                        number=invoice.number,
                        first_name=name.split()[0] if name else "",
                    ),
                    subject=f"Invoice {invoice.number or invoice.pk} is overdue",
                )
            )
        return messages_queue(
            dispatch_id=dispatch_id, channel=channel, messages=messages
        )
