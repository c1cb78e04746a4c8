"""People's replies: STOP opts them out of a channel, START back in, HELP is answered.

A reply belongs to the organization whose sender identity (number, messaging
service, address) it was sent to, and acts there alone: on its leads at the
sender's contact and on its suppression list. A reply sent to the shared default
sender (settings, no organization's account) or to nobody the vendor names belongs
to the organization whose message it answers; one sent to an identity no
organization has changes nothing.
"""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.contacts import ContactError, normalize_email, normalize_phone
from crm.models import Channel, Lead, Organization
from crm.services.consent import leads_keyword_apply
from crm.services.suppressions import (
    address_suppress_by_keyword,
    address_unsuppress_by_keyword,
)
from messaging.models import (
    PENDING_DUE,
    CommunicationLog,
    InboundReply,
    LogStatus,
    OwnDispatch,
)

# A module, not its function: outbound imports recovery, which imports this.
from messaging.services import outbound
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_create,
    dispatch_finish_if_done,
)
from messaging.services.logs import NewLog, new_send_id
from vendors.base import InboundMessage
from vendors.models import VendorAccount

logger = logging.getLogger(__name__)

# The words carriers and the CTIA handbook expect, alone in the message.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
KEYWORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS
SKIP_REASON = "opted_out"
# One SMS segment of GSM-7 characters: a HELP answer never costs two.
HELP_REPLY_MAX = 160
HELP_REPLY_END = "Reply STOP to opt out."
_APPLIED = (InboundReply.Action.OPT_OUT, InboundReply.Action.OPT_IN)


@dataclass
class InboundOutcome:
    received: int = 0
    opted_out: list[int] = field(default_factory=list)
    opted_in: list[int] = field(default_factory=list)
    suppressed: int = 0
    ignored: int = 0
    duplicates: int = 0
    helped: int = 0


def keyword(text: str) -> str:
    """The message's one word, uppercased, without punctuation: "Stop." is STOP."""
    words = text.strip().upper().split()
    if len(words) != 1:
        return ""
    return "".join(ch for ch in words[0] if ch.isalnum())


def inbound_handle(
    *, messages: Sequence[InboundMessage], vendor: str = ""
) -> InboundOutcome:
    """Apply each message's keyword in the organization it was sent to.

    A STOP opts out that organization's leads at the sender's contact, suppresses
    the contact there, and skips its messages still waiting to go to the contact on
    that channel, so it is honoured for the campaign already running too. A START
    undoes what a STOP did, never an opt-out or suppression made otherwise. Of a
    STOP and a START from the same person the one the vendor timestamped later wins,
    whatever order they arrive in. HELP is answered with the organization's help
    text, through the pipeline. A message the vendor sent before (same message id)
    is not applied again. Every message is kept as an InboundReply with what it
    did: the record of who opted out or in, when, and by which words.
    """
    outcome = InboundOutcome(received=len(messages))
    for message in messages:
        reply, contact, known = _reply_read(message, vendor=vendor)
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
            reply.action = (
                InboundReply.Action.NO_ORGANIZATION
                if known
                else InboundReply.Action.UNKNOWN_RECIPIENT
            )
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
) -> tuple[InboundReply, str | None, bool]:
    """The message as an unsaved reply (its keyword, if one we act on, and its
    organization), its sender as a normalized contact (None if unusable), and
    whether the identity it was sent to is ours (an organization's or the shared
    default sender)."""
    word = keyword(message.body)
    if word not in KEYWORDS:
        word = ""
    contact = _contact(message.channel, message.sender)
    recipient = (_contact(message.channel, message.to) or message.to.strip())[:254]
    organization_id = recipient_organization_id(
        channel=message.channel, recipients=[recipient, message.to_service]
    )
    known = organization_id is not None or _is_shared_sender(message.channel, recipient)
    if organization_id is None and known and contact:
        organization_id = reply_organization_id(
            contact=contact, channel=message.channel
        )
    reply = InboundReply(
        vendor=vendor,
        vendor_message_id=message.message_id,
        organization_id=organization_id,
        channel=message.channel,
        sender=(contact or message.sender)[:254],
        recipient=recipient,
        body=message.body,
        keyword=word,
        received_at=message.received_at,
    )
    return reply, contact, known


def _contact(channel: str, address: str) -> str | None:
    try:
        return (
            normalize_phone(address) if channel == "sms" else normalize_email(address)
        )
    except ContactError:
        return None


def recipient_organization_id(*, channel: str, recipients: Sequence[str]) -> int | None:
    """The organization whose sender identity on the channel is one of `recipients`.

    A sender identity belongs to one account, whether active or not, so a STOP to a
    number an organization has since retired is still that organization's.
    """
    wanted = [recipient for recipient in recipients if recipient]
    if not wanted:
        return None
    return (
        VendorAccount.objects.filter(channel=channel, sender__in=wanted)
        .order_by("-is_active", "pk")
        .values_list("organization_id", flat=True)
        .first()
    )


def _is_shared_sender(channel: str, recipient: str) -> bool:
    """Whether replies to `recipient` are routed by the message they answer: the
    vendor named no recipient, or the default sender every organization without an
    account of its own shares."""
    if not recipient:
        return True
    if channel == Channel.SMS:
        shared = [settings.TWILIO_FROM_NUMBER, settings.TWILIO_MESSAGING_SERVICE_SID]
    else:
        shared = [settings.DEFAULT_FROM_EMAIL]
    return recipient in {_contact(channel, s) or s for s in shared if s}


def _reply_apply(reply: InboundReply, *, contact: str, outcome: InboundOutcome) -> None:
    """Act on the reply in its organization and save it with what it did.

    STOP and START are taken one at a time per organization and contact (a lock to
    the end of the transaction), and one older than the last applied there is
    stale and changes nothing.
    """
    if reply.keyword in HELP_WORDS:
        _help_answer(reply, contact=contact, outcome=outcome)
        return
    _contact_lock(reply.organization_id, reply.channel, contact)
    if _newer_keyword_applied(reply):
        outcome.ignored += 1
        reply.action = InboundReply.Action.STALE
        reply.save()
        return
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
    if opting_out:
        address_suppress_by_keyword(
            organization_id=reply.organization_id,
            channel=reply.channel,
            address=contact,
            at=reply.received_at,
            source=f"{reply.vendor or 'inbound'} {reply.vendor_message_id}".strip(),
        )
        outcome.opted_out += changed
        reply.action = InboundReply.Action.OPT_OUT
        reply.messages_suppressed = logs_suppress(
            organization_id=reply.organization_id,
            contact=contact,
            channel=reply.channel,
        )
        outcome.suppressed += reply.messages_suppressed
    else:
        address_unsuppress_by_keyword(
            organization_id=reply.organization_id,
            channel=reply.channel,
            address=contact,
            at=reply.received_at,
        )
        outcome.opted_in += changed
        reply.action = InboundReply.Action.OPT_IN
    reply.save()


def _contact_lock(organization_id: int, channel: str, contact: str) -> None:
    """Hold the organization's keywords from this contact until commit, so that two
    arriving at once are ordered by their vendor times, not by who commits last."""
    if connection.vendor != "postgresql":
        return  # SQLite writes one transaction at a time anyway.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"inbound:{organization_id}:{channel}:{contact}"],
        )


def _newer_keyword_applied(reply: InboundReply) -> bool:
    """Whether a STOP or START the contact sent the organization later than this
    one was applied already."""
    return InboundReply.objects.filter(
        organization_id=reply.organization_id,
        channel=reply.channel,
        sender=reply.sender,
        action__in=_APPLIED,
        received_at__gt=reply.received_at,
    ).exists()


def _help_answer(reply: InboundReply, *, contact: str, outcome: InboundOutcome) -> None:
    """Queue the organization's HELP answer to the contact as a transactional
    message: one per reply, so a replay (same vendor message id) is answered once."""
    reply.action = InboundReply.Action.HELP
    reply.save()
    organization = Organization.objects.get(pk=reply.organization_id)
    dispatch_id = own_dispatch_id(
        organization_id=organization.pk,
        kind=OwnDispatch.Kind.HELP_REPLY,
        channel=reply.channel,
    )
    field = "phone" if reply.channel == Channel.SMS else "email"
    lead_id = (
        Lead.objects.filter(organization=organization, **{field: contact})
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    key = f"help-{reply.pk}"
    text = help_reply_text(
        organization_name=organization.name,
        help_text=organization.help_text,
        limit=HELP_REPLY_MAX if reply.channel == Channel.SMS else None,
    )
    outbound.messages_queue(
        dispatch_id=dispatch_id,
        channel=reply.channel,
        messages=[
            NewLog(
                lead_id=lead_id,
                dedupe_key=key,
                send_id=new_send_id(scope=dispatch_id, key=key),
                recipient=contact,
                body=text,
                subject=(
                    "" if reply.channel == Channel.SMS else f"{organization.name}: help"
                ),
            )
        ],
    )
    outcome.helped += 1


def help_reply_text(
    *, organization_name: str, help_text: str, limit: int | None = None
) -> str:
    """ "<organization>: <help text> Reply STOP to opt out.", within `limit`
    characters: the help text is cut short (with "...") to fit, never the rest."""
    name = " ".join(organization_name.split())
    help_text = " ".join(help_text.split())
    text = " ".join(filter(None, [f"{name}:", help_text, HELP_REPLY_END]))
    if limit is None or len(text) <= limit:
        return text
    name = name[: limit // 3]
    room = limit - len(f"{name}: ") - len(f" {HELP_REPLY_END}")
    cut = f"{help_text[: room - 3].rstrip()}..." if room > 3 else ""
    return " ".join(filter(None, [f"{name}:", cut, HELP_REPLY_END]))


def own_dispatch_id(*, organization_id: int, kind: str, channel: str) -> int:
    """The organization's open-ended transactional dispatch of this kind for the
    channel (HELP answers), made once: it never expects an audience, so it never
    completes and takes messages for as long as the organization exists."""
    found = OwnDispatch.objects.filter(
        organization_id=organization_id, kind=kind, channel=channel
    ).values_list("dispatch_id", flat=True)
    if found:
        return found[0]
    organization = Organization.objects.get(pk=organization_id)
    try:
        with transaction.atomic():
            dispatch = dispatch_create(
                organization=organization,
                label=f"{OwnDispatch.Kind(kind).label}: {organization.name}",
                channel=channel,
                transactional=True,
            )
            OwnDispatch.objects.create(
                organization_id=organization_id,
                kind=kind,
                channel=channel,
                dispatch=dispatch,
            )
            return dispatch.pk
    except IntegrityError:
        # Another worker made it first; its dispatch is the one.
        return OwnDispatch.objects.get(
            organization_id=organization_id, kind=kind, channel=channel
        ).dispatch_id


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
