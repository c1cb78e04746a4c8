"""API clients: a member of one organization, and the objects of another."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Membership
from tests.crm.factories import MembershipFactory, OrganizationFactory
from tests.support.workers import (  # noqa: F401 (the end-to-end test's)
    clean_broker,
    start_workers,
)


@pytest.fixture(autouse=True)
def _no_throttle_memory(settings):
    """Each test starts with empty throttle counters (they live in the cache)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def member(db):
    return MembershipFactory(role=Membership.Role.MARKETER)


@pytest.fixture
def org(member):
    return member.organization


@pytest.fixture
def api(member) -> APIClient:
    """Signed in by token, as integrators are."""
    token = Token.objects.create(user=member.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def other_org(db):
    return OrganizationFactory()
