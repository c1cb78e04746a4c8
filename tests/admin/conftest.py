"""Admin fixtures: a marketer of one organization, an operator (superuser), data."""

import pytest

from crm.models import Membership
from tests.crm.factories import (
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)


@pytest.fixture
def member(organization):
    """A marketer: staff, no Django permissions, rights from the membership."""
    return MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.MARKETER,
    ).user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def operator_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def other_organization(db):
    return OrganizationFactory()
