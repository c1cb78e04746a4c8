"""Writes to single leads (the API's and admin's path; imports go in bulk)."""

import zoneinfo
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from crm.contacts import ContactError, normalize_emails, normalize_phones
from crm.models import (
    LEAD_DATA_FIELDS,
    OPT_OUT_FIELDS,
    Channel,
    Lead,
    OptOutSource,
    Organization,
    Suppression,
)
from crm.services.suppressions import NewSuppression, addresses_suppress

# phone and email follow the lists' first entries (Lead.set_contacts).
UPDATABLE_FIELDS = frozenset(LEAD_DATA_FIELDS) - {"phone", "email"}


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _apply(lead: Lead, fields: dict[str, Any]) -> None:
    """Set the fields on the lead, contacts normalized; errors collected by field."""
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a lead")
    errors: dict[str, list[str]] = {}
    phones, emails = fields.pop("phones", None), fields.pop("emails", None)
    if phones is not None:
        try:
            phones = normalize_phones(list(phones))
        except ContactError as error:
            errors["phones"] = [str(error)]
    if emails is not None:
        try:
            emails = normalize_emails(list(emails))
        except ContactError as error:
            errors["emails"] = [str(error)]
    zone = fields.get("timezone")
    if zone and zone not in _timezones():
        errors["timezone"] = [f"unknown time zone {zone!r}"]
    if errors:
        raise ValidationError(errors)
    for name, value in fields.items():
        setattr(lead, name, value)
    lead.set_contacts(
        phones=lead.phones if phones is None else phones,
        emails=lead.emails if emails is None else emails,
    )
    if not (lead.external_id or lead.phone or lead.email):
        raise ValidationError(
            {"non_field_errors": ["a lead needs an external_id, a phone or an email"]}
        )


def _save(lead: Lead, **kwargs: Any) -> Lead:
    lead.full_clean(exclude=["organization"], validate_constraints=False)
    try:
        with transaction.atomic():
            lead.save(**kwargs)
    except IntegrityError as error:
        # The one constraint a single save can break: external ids are per org.
        raise ValidationError(
            {"external_id": [f"a lead with external_id {lead.external_id!r} exists"]}
        ) from error
    return lead


def lead_create(*, organization: Organization, **fields: Any) -> Lead:
    """Create a lead; phones become E.164, emails lowercase, errors name the field."""
    lead = Lead(organization=organization)
    opted_out = _opt_outs_apply(lead, fields)
    _apply(lead, fields)
    with transaction.atomic():
        _save(lead)
        _suppress(lead, opted_out)
    return lead


def lead_update(*, lead: Lead, **fields: Any) -> Lead:
    """Change the given fields only; the primary phone/email follow the lists.

    The row is re-read under a lock and only the given columns are written, so an
    opt-out (an inbound STOP) or an import that changed the lead meanwhile stands.
    Raises Lead.DoesNotExist if the lead is gone.
    """
    columns = set(fields)
    if "phones" in columns:
        columns.add("phone")
    if "emails" in columns:
        columns.add("email")
    for flag in OPT_OUT_FIELDS.values():
        if flag in columns:
            columns.add(f"{flag}_source")
    with transaction.atomic():
        current = Lead.objects.select_for_update().get(pk=lead.pk)
        opted_out = _opt_outs_apply(current, fields)
        _apply(current, fields)
        _save(current, update_fields=[*sorted(columns), "updated_at"])
        _suppress(current, opted_out)
        return current


def _suppress(lead: Lead, channels: list[str]) -> None:
    """A user opting the lead out puts its addresses on the suppression list."""
    addresses_suppress(
        suppressions=[
            NewSuppression(
                organization_id=lead.organization_id,
                channel=channel,
                address=address,
                reason=Suppression.Reason.MANUAL,
                source=f"lead {lead.pk}",
            )
            for channel in channels
            for address in (lead.phones if channel == Channel.SMS else lead.emails)
        ]
    )


def _opt_outs_apply(lead: Lead, fields: dict[str, Any]) -> list[str]:
    """Take the opt-out flags out of `fields` and set them on the lead, by a user;
    the channels it is opted out of now.

    An update may opt the lead out, never back in: lifting an opt-out is an
    explicit act with a reason (crm.services.consent.lead_opt_in, the admin's
    "lift opt-out" action).
    """
    opted_out = []
    for channel, flag in OPT_OUT_FIELDS.items():
        if flag not in fields:
            continue
        wanted = bool(fields.pop(flag))
        if getattr(lead, flag) and not wanted:
            raise ValidationError(
                {
                    flag: [
                        "an opt-out cannot be cleared here: a user lifts it in the "
                        "admin, with a reason"
                    ]
                }
            )
        if wanted and not getattr(lead, flag):
            setattr(lead, flag, True)
            setattr(lead, f"{flag}_source", OptOutSource.MANUAL)
        if wanted:
            opted_out.append(channel)
    return opted_out
