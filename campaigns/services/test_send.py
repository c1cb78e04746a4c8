"""A campaign's test send: its message, rendered for a lead the marketer chooses, sent
to the marketer's own phone or email before the campaign goes to anyone."""

from dataclasses import dataclass

from django.db import transaction

from campaigns.bounds import body_skip_reason, fit_subject
from campaigns.models import Campaign
from campaigns.personalization import compile_template, render
from crm.contacts import ContactError
from crm.models import Channel, Lead
from crm.services.suppressions import address_normalize
from crm.services.unsubscribe import unsubscribe_footer
from messaging.models import CommunicationLog
from messaging.services.dispatches import dispatch_create
from messaging.services.logs import NewLog, new_send_id, send_id_suffix
from messaging.services.outbound import messages_queue

SUBJECT_PREFIX = "[Test] "


class TestSendError(Exception):
    """The test send cannot go; `field` names the input at fault."""

    def __init__(self, reason: str, *, field: str) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class TestSend:
    """The message a test send made: its log, and what became of it so far."""

    id: int
    send_id: str
    status: str
    to: str
    lead: int


def campaign_test_send(*, campaign_id: int, lead_id: int, to: str) -> TestSend:
    """Send the campaign's message, as `lead` would get it, to the address `to`.

    It renders exactly as expansion renders (same personalization; an email ends
    with an unsubscribe link, here for `to`), its subject marked "[Test] ". It goes
    through the pipeline like any message, in the campaign's test dispatch: never
    in the campaign's counters, and sendable whatever the campaign's state. The
    log names no lead, since the lead is not who receives it.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    lead = Lead.objects.filter(
        pk=lead_id, organization_id=campaign.organization_id
    ).first()
    if lead is None:
        raise TestSendError("no such lead in the campaign's organization", field="lead")
    channel = campaign.channel
    try:
        address = address_normalize(channel=channel, address=to)
    except ContactError as error:
        kind = "phone number" if channel == Channel.SMS else "email address"
        raise TestSendError(
            f"not a valid {kind} for this {channel} campaign: {error.reason}",
            field="to",
        ) from error
    body, subject = _rendered(campaign, lead)
    if channel == Channel.EMAIL:
        body += unsubscribe_footer(
            organization_id=campaign.organization_id, address=address
        )
    if body_skip_reason(channel, body):
        raise TestSendError(
            "the message rendered for this lead is too long for an SMS", field="lead"
        )
    suffix = send_id_suffix()
    message = NewLog(
        lead_id=None,
        dedupe_key=f"test-{lead.pk}-{suffix}",
        send_id=new_send_id(scope=f"{campaign.pk}test", key=lead.pk, suffix=suffix),
        recipient=address,
        body=body,
        subject=subject,
    )
    with transaction.atomic():
        dispatch_id = _test_dispatch_id(campaign.pk)
        messages_queue(dispatch_id=dispatch_id, channel=channel, messages=[message])
        log_id, status = CommunicationLog.objects.values_list("pk", "status").get(
            dispatch_id=dispatch_id, send_id=message.send_id
        )
    return TestSend(
        id=log_id, send_id=message.send_id, status=status, to=address, lead=lead.pk
    )


def _rendered(campaign: Campaign, lead: Lead) -> tuple[str, str]:
    """The campaign's body and (email) subject for the lead, as expansion makes them."""
    try:
        body = render(compile_template(campaign.template), lead)
        subject = ""
        if campaign.channel == Channel.EMAIL:
            subject = render(compile_template(campaign.subject), lead)
    except Exception as error:
        raise TestSendError(
            f"the message cannot be rendered for this lead ({type(error).__name__})",
            field="lead",
        ) from error
    if campaign.channel == Channel.EMAIL:
        subject = fit_subject(SUBJECT_PREFIX + subject)
    return body, subject


def _test_dispatch_id(campaign_id: int) -> int:
    """The campaign's test dispatch, made with its first test send under the lock.

    Open-ended (it never expects an audience, so it never completes) and
    transactional; a draft's channel may change, and its dispatch follows.
    """
    campaign = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("test_dispatch", "organization")
        .get(pk=campaign_id)
    )
    dispatch = campaign.test_dispatch
    if dispatch is None:
        campaign.test_dispatch = dispatch_create(
            organization=campaign.organization,
            label=f"Test sends of campaign {campaign.pk}: {campaign.name}",
            channel=campaign.channel,
            transactional=True,
        )
        campaign.save(update_fields=["test_dispatch", "updated_at"])
    elif dispatch.channel != campaign.channel:
        dispatch.channel = campaign.channel
        dispatch.save(update_fields=["channel"])
    return campaign.test_dispatch_id
