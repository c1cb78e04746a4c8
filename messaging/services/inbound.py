"""People's replies: STOP / UNSUBSCRIBE opt them out of a channel, START back in.

A reply acts in the organization whose message it answers, on its leads at the
sender's contact; one that answers nothing we sent changes nothing.
"""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.contacts import ContactError, normalize_email, normalize_phone
from crm.models import Channel, Lead
from crm.services.consent import leads_keyword_apply
from messaging.models import PENDING_DUE, CommunicationLog, InboundReply, LogStatus
from messaging.services.dispatches import dispatch_counters_add, dispatch_finish_if_done
from vendors.base import InboundMessage

logger = logging.getLogger(__name__)

# The words carriers and the CTIA handbook expect, alone in the message.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "YES"})
SKIP_REASON = "opted_out"


@dataclass
class InboundOutcome:
    received: int = 0
    opted_out: list[int] = field(default_factory=list)
    opted_in: list[int] = field(default_factory=list)
    suppressed: int = 0
    ignored: int = 0
    duplicates: int = 0


def keyword(text: str) -> str:
    """The message's one word, uppercased, without punctuation: "Stop." is STOP."""
    words = text.strip().upper().split()
    if len(words) != 1:
        return ""
    return "".join(ch for ch in words[0] if ch.isalnum())


def inbound_handle(
    *, messages: Sequence[InboundMessage], vendor: str = ""
) -> InboundOutcome:
    """Apply each message's keyword to its organization's leads at the sender's
    contact.

    An opt-out also skips the messages of that organization still waiting to go to
    the contact on that channel, so a STOP is honoured for the campaign already
    running too. A message the vendor sent before (same message id) is not applied
    again. Every other message is kept as an InboundReply with what it did: the
    record of who opted out or in, when, and by which words.
    """
    outcome = InboundOutcome(received=len(messages))
    for message in messages:
        reply, contact = _reply_read(message, vendor=vendor)
        if _is_replay(reply):
            outcome.duplicates += 1
            continue
        if not reply.keyword:
            outcome.ignored += 1
            reply.action = InboundReply.Action.IGNORED
            reply.save()
            continue
        if contact is None:
            logger.warning("inbound %s from unusable sender", message.channel)
            outcome.ignored += 1
            reply.action = InboundReply.Action.UNUSABLE_SENDER
            reply.save()
            continue
        if reply.organization_id is None:
            outcome.ignored += 1
            reply.action = InboundReply.Action.NO_ORGANIZATION
            reply.save()
            continue
        try:
            with transaction.atomic():
                _reply_apply(reply, contact=contact, outcome=outcome)
        except IntegrityError:
            # The same message, applied meanwhile by another worker: rolled back.
            outcome.duplicates += 1
    return outcome


def _is_replay(reply: InboundReply) -> bool:
    return bool(reply.vendor_message_id) and (
        InboundReply.objects.filter(
            vendor=reply.vendor, vendor_message_id=reply.vendor_message_id
        ).exists()
    )


def _reply_read(
    message: InboundMessage, *, vendor: str
) -> tuple[InboundReply, str | None]:
    """The message as an unsaved reply (its keyword, if one we act on), and its
    sender as a normalized contact, None if unusable."""
    word = keyword(message.body)
    if word not in OPT_OUT_WORDS and word not in OPT_IN_WORDS:
        word = ""
    try:
        contact = (
            normalize_phone(message.sender)
            if message.channel == "sms"
            else normalize_email(message.sender)
        )
    except ContactError:
        contact = None
    reply = InboundReply(
        vendor=vendor,
        vendor_message_id=message.message_id,
        organization_id=(
            reply_organization_id(contact=contact, channel=message.channel)
            if contact
            else None
        ),
        channel=message.channel,
        sender=(contact or message.sender)[:254],
        body=message.body,
        keyword=word,
        received_at=message.received_at,
    )
    return reply, contact


def _reply_apply(reply: InboundReply, *, contact: str, outcome: InboundOutcome) -> None:
    """Opt the organization's leads at the contact out or in; an opt-out also
    suppresses its waiting messages to the contact on that channel. A keyword older
    than the last one applied there is stale and changes nothing. The reply is saved
    with what it did."""
    opting_out = reply.keyword in OPT_OUT_WORDS
    keyword = leads_keyword_apply(
        organization_id=reply.organization_id,
        contact=contact,
        channel=reply.channel,
        opting_out=opting_out,
        at=reply.received_at,
    )
    changed = keyword.changed
    reply.leads_changed = len(changed)
    if not keyword.applied:
        outcome.ignored += 1
        reply.action = InboundReply.Action.STALE
    elif opting_out:
        outcome.opted_out += changed
        reply.action = InboundReply.Action.OPT_OUT
        reply.messages_suppressed = logs_suppress(
            organization_id=reply.organization_id,
            contact=contact,
            channel=reply.channel,
        )
        outcome.suppressed += reply.messages_suppressed
    else:
        outcome.opted_in += changed
        reply.action = InboundReply.Action.OPT_IN
    reply.save()


def reply_organization_id(*, contact: str, channel: str) -> int | None:
    """The organization whose latest message to this contact a reply answers.

    Found through the leads at that primary contact and their messages (indexed by
    lead), never through the leads alone: a lead added with someone's number must
    not make their replies to another organization readable.
    """
    field = "phone" if channel == Channel.SMS else "email"
    leads = Lead.objects.filter(**{field: contact}).values("pk")
    return (
        CommunicationLog.objects.filter(
            lead__in=leads, channel=channel, sent_at__isnull=False
        )
        .order_by("-created_at")
        .values_list("dispatch__organization_id", flat=True)
        .first()
    )


def logs_suppress(*, organization_id: int, contact: str, channel: str) -> int:
    """Skip the organization's pending messages to this contact on this channel;
    return how many.

    Messages a worker holds right now (processing) are left to finish, as a cancel
    leaves them: the vendor may already have them.
    """
    now = timezone.now()
    logs = list(
        CommunicationLog.objects.filter(
            PENDING_DUE,
            recipient=contact,
            channel=channel,
            dispatch__organization_id=organization_id,
        )
        .order_by("pk")
        .select_for_update(of=("self",), skip_locked=True)
        .values_list("pk", "dispatch_id")
    )
    if not logs:
        return 0
    CommunicationLog.objects.filter(
        pk__in=[pk for pk, _ in logs], status=LogStatus.PENDING
    ).update(
        status=LogStatus.SKIPPED,
        skip_reason=SKIP_REASON,
        next_attempt_at=None,
        updated_at=now,
    )
    per_dispatch = Counter(dispatch_id for _, dispatch_id in logs)
    for dispatch_id, count in per_dispatch.items():
        dispatch_counters_add(dispatch_id=dispatch_id, pending=-count, skipped=count)
        transaction.on_commit(
            lambda dispatch_id=dispatch_id: dispatch_finish_if_done(
                dispatch_id=dispatch_id
            )
        )
    return len(logs)
