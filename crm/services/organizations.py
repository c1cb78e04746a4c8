"""Writes to organizations and their members: a new tenant and the people in it."""

import zoneinfo
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from crm.models import Membership, Organization


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def organization_create(*, name: str) -> Organization:
    """A new organization; ValidationError under "name" if it is blank or taken.

    Its slug comes from the name; a name whose slug or spelling (any case) another
    organization has is taken.
    """
    name = name.strip()
    slug = slugify(name)[: Organization._meta.get_field("slug").max_length]
    if not slug:
        raise ValidationError(
            {"name": ["needs at least one letter or digit"]}, code="invalid"
        )
    if Organization.objects.filter(Q(slug=slug) | Q(name__iexact=name)).exists():
        raise ValidationError(
            {"name": [f'an organization "{name}" (slug {slug}) exists already']},
            code="exists",
        )
    organization = Organization(name=name, slug=slug)
    organization.full_clean()
    organization.save()
    return organization


def member_create(
    *,
    organization: Organization,
    username: str,
    email: str,
    password: str,
    role: Membership.Role,
) -> Membership:
    """A user who signs in to the admin (staff), a member of the organization.

    The role decides what they may do there (crm.admin_scoping). ValidationError
    under "username" if it is taken or malformed, "email" if malformed, "password"
    if it fails the password validators (each reason listed).
    """
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError(
            {"username": [f'a user "{username}" exists already']}, code="exists"
        )
    user = user_model(username=username, email=email, is_staff=True)
    user.full_clean(exclude=["password"])
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}, code="weak") from error
    user.set_password(password)
    user.save()
    return Membership.objects.create(user=user, organization=organization, role=role)


def member_set_password(*, membership: Membership, password: str) -> None:
    """Give the member a new password, checked by the password validators."""
    user = membership.user
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}, code="weak") from error
    user.set_password(password)
    user.save(update_fields=["password"])


# The sending rules an organization's owner sets (docs/consent.md).
SETTINGS_FIELDS = frozenset(
    {
        "name",
        "time_zone",
        "quiet_hours_enabled",
        "quiet_hours_start",
        "quiet_hours_end",
        "transactional_night_start",
        "transactional_night_end",
        "frequency_cap_count",
        "frequency_cap_days",
        "help_text",
    }
)
FREQUENCY_CAP_MAX_COUNT = 1000
FREQUENCY_CAP_MAX_DAYS = 365


def organization_settings_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with the organization's settings as they would be, by field.

    `values` holds every settings field (the current ones with the changes over
    them); an empty dict means they are valid.
    """
    errors: dict[str, list[str]] = {}
    if not str(values.get("name", "")).strip():
        errors["name"] = ["must not be blank"]
    zone = values.get("time_zone")
    if zone not in _timezones():
        errors["time_zone"] = [
            f"unknown time zone {zone!r}: an IANA name such as America/New_York"
        ]
    for start, end in (
        ("quiet_hours_start", "quiet_hours_end"),
        ("transactional_night_start", "transactional_night_end"),
    ):
        if values.get(start) is not None and values.get(start) == values.get(end):
            errors[end] = [f"must differ from {start}: the window would be empty"]
    count = values.get("frequency_cap_count")
    if count is not None and not 1 <= count <= FREQUENCY_CAP_MAX_COUNT:
        errors["frequency_cap_count"] = [
            f"between 1 and {FREQUENCY_CAP_MAX_COUNT}, or null for no cap"
        ]
    days = values.get("frequency_cap_days")
    if days is None or not 1 <= days <= FREQUENCY_CAP_MAX_DAYS:
        errors["frequency_cap_days"] = [f"between 1 and {FREQUENCY_CAP_MAX_DAYS} days"]
    return errors


def organization_settings_update(
    *, organization: Organization, **fields: Any
) -> Organization:
    """Change the organization's name and sending rules; only the given columns.

    ValidationError by field for a value that is not allowed (an unknown time zone,
    an empty window, a cap out of range); nothing is written then.
    """
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} here")
    if "name" in fields:
        fields["name"] = fields["name"].strip()
    with transaction.atomic():
        current = Organization.objects.select_for_update().get(pk=organization.pk)
        values = {name: getattr(current, name) for name in SETTINGS_FIELDS}
        errors = organization_settings_errors({**values, **fields})
        if errors:
            raise ValidationError(errors)
        for name, value in fields.items():
            setattr(current, name, value)
        if fields:
            current.save(update_fields=sorted(fields))
    return current
