"""Opt-outs: the one place they change, by field-level atomic updates.

Every write here is one UPDATE of the opt-out columns alone, so a form, an API
call or an import holding an older copy of the lead can never undo it, and it
never undoes what they write.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import OPT_OUT_FIELDS, Channel, Lead, OptOutSource, Suppression
from crm.services.suppressions import (
    NewSuppression,
    addresses_suppress,
    addresses_unsuppress,
)

logger = logging.getLogger(__name__)

_KEYWORD_AT_FIELDS = {Channel.SMS: "sms_keyword_at", Channel.EMAIL: "email_keyword_at"}
_CONTACT_FIELDS = {Channel.SMS: "phone", Channel.EMAIL: "email"}
# A lead's every address on each channel.
_LISTS = {Channel.SMS: "phones", Channel.EMAIL: "emails"}
_SUPPRESSION_REASONS = {
    OptOutSource.KEYWORD: Suppression.Reason.STOP_KEYWORD,
    OptOutSource.MANUAL: Suppression.Reason.MANUAL,
}


class OptOutError(Exception):
    """An opt-out change that is not allowed (an unknown channel, no reason)."""


def _fields(channel: str) -> tuple[str, str]:
    if channel not in OPT_OUT_FIELDS:
        raise OptOutError(f"unknown channel {channel!r}")
    flag = OPT_OUT_FIELDS[channel]
    return flag, f"{flag}_source"


def _addresses(lead_id: int, channel: str) -> list[tuple[int, list[str]]]:
    """The lead's organization and addresses on the channel; none if it is gone."""
    return list(
        Lead.objects.filter(pk=lead_id).values_list("organization_id", _LISTS[channel])
    )


def lead_opt_out(*, lead_id: int, channel: str, source: str, reason: str) -> bool:
    """Opt the lead out of the channel; True if it was not opted out already.

    The lead's addresses on the channel go on the suppression list too (reason
    stop_keyword for a keyword, manual for a user), so a lead imported later with
    one of them is not messaged either.
    """
    flag, source_field = _fields(channel)
    with transaction.atomic():
        changed = (
            Lead.objects.filter(pk=lead_id, **{flag: False}).update(
                **{flag: True, source_field: source}, updated_at=timezone.now()
            )
            > 0
        )
        addresses_suppress(
            suppressions=[
                NewSuppression(
                    organization_id=organization_id,
                    channel=channel,
                    address=address,
                    reason=_SUPPRESSION_REASONS.get(source, Suppression.Reason.MANUAL),
                    source=f"lead {lead_id}",
                )
                for organization_id, addresses in _addresses(lead_id, channel)
                for address in addresses
            ]
        )
    if changed:
        logger.info(
            "lead %s opted out of %s (%s): %s", lead_id, channel, source, reason
        )
    return changed


def lead_opt_in(
    *, lead_id: int, channel: str, reason: str, lifted_by: str = ""
) -> bool:
    """Lift the lead's opt-out of the channel, a user's explicit act with a reason.

    The suppressions of the lead's addresses on the channel are lifted too, each
    recorded with the reason and `lifted_by` (crm.SuppressionLift). True if the
    lead was opted out or an address of it suppressed. The admin also keeps the
    reason in the lead's history.
    """
    if not reason.strip():
        raise OptOutError("lifting an opt-out needs a reason")
    flag, source_field = _fields(channel)
    with transaction.atomic():
        changed = (
            Lead.objects.filter(pk=lead_id, **{flag: True}).update(
                **{flag: False, source_field: ""}, updated_at=timezone.now()
            )
            > 0
        )
        lifted = []
        for organization_id, addresses in _addresses(lead_id, channel):
            lifted = addresses_unsuppress(
                organization_id=organization_id,
                channel=channel,
                addresses=addresses,
                lifted_by=lifted_by,
                reason=reason,
            )
    if changed or lifted:
        logger.info("lead %s opt-out of %s lifted: %s", lead_id, channel, reason)
    return changed or bool(lifted)


@dataclass
class KeywordOutcome:
    applied: list[int] = field(default_factory=list)  # the keyword is their latest
    changed: list[int] = field(default_factory=list)  # their opt-out flipped


def leads_keyword_apply(
    *,
    organization_id: int,
    contact: str,
    channel: str,
    opting_out: bool,
    at: datetime,
) -> KeywordOutcome:
    """Apply a STOP (or START) sent at `at` to the organization's leads at `contact`.

    Only leads whose last keyword is older than `at` change, so of a STOP and a
    START the one the vendor timestamped later wins whatever order they arrive in.
    A START lifts only an opt-out a keyword made, never one a user or an import
    set. Every lead the keyword is applied to records its time.
    """
    flag, source_field = _fields(channel)
    keyword_at = _KEYWORD_AT_FIELDS[channel]
    leads = Lead.objects.filter(
        Q(**{f"{keyword_at}__isnull": True}) | Q(**{f"{keyword_at}__lt": at}),
        organization_id=organization_id,
        **{_CONTACT_FIELDS[channel]: contact},
    )
    now = timezone.now()
    if opting_out:
        changing = leads.filter(**{flag: False})
        values = {flag: True, source_field: OptOutSource.KEYWORD}
    else:
        changing = leads.filter(**{flag: True, source_field: OptOutSource.KEYWORD})
        values = {flag: False, source_field: ""}
    with transaction.atomic():
        locked = list(
            leads.order_by("pk").select_for_update().values_list("pk", flat=True)
        )
        changed = list(changing.filter(pk__in=locked).values_list("pk", flat=True))
        Lead.objects.filter(pk__in=changed).update(**values, updated_at=now)
        Lead.objects.filter(pk__in=locked).update(**{keyword_at: at})
    return KeywordOutcome(applied=locked, changed=changed)
