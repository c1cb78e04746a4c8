"""Onboarding: an organization, its owner and the owner's API token, all or nothing."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from crm.models import Membership, Organization
from crm.services.organizations import member_create, organization_create


@dataclass(frozen=True)
class Onboarded:
    organization: Organization
    owner: AbstractBaseUser
    token: str


def organization_onboard(
    *, name: str, owner_username: str, owner_email: str, owner_password: str
) -> Onboarded:
    """Create the organization, its owner (signs in to the admin) and an API token.

    ValidationError (nothing written) if the organization or the user exists, or
    the password fails the validators; see crm.services.organizations.
    """
    with transaction.atomic():
        organization = organization_create(name=name)
        membership = member_create(
            organization=organization,
            username=owner_username,
            email=owner_email,
            password=owner_password,
            role=Membership.Role.OWNER,
        )
        token = Token.objects.create(user=membership.user)
    return Onboarded(organization=organization, owner=membership.user, token=token.key)
