"""Handing an automation's messages to the one pipeline: its dispatch, its logs."""

from django.db import IntegrityError, transaction

from automations.models import AutomationDispatch, NurtureSequence
from campaigns.bounds import body_skip_reason, fit_subject
from crm.eligibility import lead_recipient
from crm.models import Channel, Lead, Organization
from crm.services.unsubscribe import unsubscribe_footer
from messaging.services.dispatches import dispatch_create
from messaging.services.logs import NewLog, new_send_id


def automation_dispatch_id(*, organization_id: int, kind: str, channel: str) -> int:
    """The organization's open-ended dispatch for reminders or dunning, made once.

    Open-ended: it never expects an audience, so it never completes and takes new
    messages for as long as the organization exists.
    """
    found = AutomationDispatch.objects.filter(
        organization_id=organization_id, kind=kind
    ).values_list("dispatch_id", flat=True)
    if found:
        return found[0]
    organization = Organization.objects.get(pk=organization_id)
    label = f"{AutomationDispatch.Kind(kind).label}: {organization.name}"
    try:
        with transaction.atomic():
            dispatch = dispatch_create(
                organization=Organization.objects.get(pk=organization_id),
                label=label,
                channel=channel,
                transactional=True,
            )
            AutomationDispatch.objects.create(
                organization_id=organization_id, kind=kind, dispatch=dispatch
            )
            return dispatch.pk
    except IntegrityError:
        # Another worker made it first; its dispatch is the one.
        return AutomationDispatch.objects.get(
            organization_id=organization_id, kind=kind
        ).dispatch_id


def sequence_dispatch_id(*, sequence_id: int, channel: str) -> int:
    """The sequence's dispatch, made with its first message under the row lock."""
    with transaction.atomic():
        sequence = NurtureSequence.objects.select_for_update().get(pk=sequence_id)
        if sequence.dispatch_id is None:
            sequence.dispatch = dispatch_create(
                organization=sequence.organization,
                label=f"Nurture: {sequence.name}",
                channel=channel,
            )
            sequence.save(update_fields=["dispatch"])
        return sequence.dispatch_id


def lead_message(
    *,
    lead: Lead,
    channel: str,
    dedupe_key: str,
    body: str,
    subject: str = "",
    marketing: bool = False,
) -> NewLog:
    """A log for one lead; skipped (with the campaigns' reasons) if it cannot go.

    Its subject is cut to fit and a body too long for the channel is skipped, as a
    campaign's are (campaigns.bounds). A `marketing` email (nurture; not a reminder
    or a dunning notice) ends with its recipient's unsubscribe link.
    """
    recipient, skip_reason = lead_recipient(lead, channel)
    if marketing and channel == Channel.EMAIL and recipient and not skip_reason:
        body += unsubscribe_footer(
            organization_id=lead.organization_id, address=recipient
        )
    return NewLog(
        lead_id=lead.pk,
        dedupe_key=dedupe_key,
        send_id=new_send_id(scope="a", key=dedupe_key),
        recipient=recipient,
        body=body,
        subject=fit_subject(subject),
        skip_reason=skip_reason or body_skip_reason(channel, body),
    )
