"""Writes to organizations and their members: a new tenant and the people in it."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.text import slugify

from crm.models import Membership, Organization


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
