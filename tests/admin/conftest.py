"""Admin fixtures: a marketer of one organization, an operator (superuser), data."""

import pytest
from django.utils import timezone

from crm.models import Membership
from messaging.models import LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import (
    LeadFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

EVERYONE = {"field": "visits", "op": "gte", "value": 0}


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


def logs_for(campaign, *, statuses: dict[str, int], error_code: str = "spam"):
    """Logs in the campaign's dispatch: `statuses` says how many of each status."""
    now = timezone.now()
    logs = []
    for status, count in statuses.items():
        for _ in range(count):
            stamps = {}
            if status in (LogStatus.SENT, LogStatus.DELIVERED):
                stamps["sent_at"] = now
            if status == LogStatus.DELIVERED:
                stamps["delivered_at"] = now
            if status == LogStatus.FAILED:
                stamps.update(failed_at=now, error_code=error_code, attempts=3)
            logs.append(
                CommunicationLogFactory(
                    dispatch=campaign.dispatch,
                    lead=LeadFactory(organization=campaign.organization),
                    status=status,
                    **stamps,
                )
            )
    return logs


def launched_campaign(organization, **fields):
    """A campaign with its dispatch, as launch leaves it (no broker involved)."""
    return CampaignFactory(
        organization=organization,
        dispatch=DispatchFactory(organization=organization),
        status="running",
        total_leads=fields.pop("total_leads", 0),
        **fields,
    )
