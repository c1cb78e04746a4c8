"""The admin says what the sending rules held back: counts on the campaign page,
and on a lead's page why it was not messaged lately."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.services.suppressions import address_suppress
from messaging.models import LogStatus
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory
from tests.support.campaigns import launched_campaign

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(hours=5)


def held_back_logs(campaign, lead=None):
    """In the campaign: two deferred, one capped, three suppressed, one sent."""
    extra = {"lead": lead} if lead else {}
    for index in range(2):
        CommunicationLogFactory(
            dispatch=campaign.dispatch,
            dedupe_key=f"deferred-{index}",
            next_attempt_at=timezone.now() + LATER,
            **extra,
        )
    CommunicationLogFactory(
        dispatch=campaign.dispatch,
        status=LogStatus.SKIPPED,
        skip_reason="frequency_cap",
        next_attempt_at=None,
    )
    for _ in range(3):
        CommunicationLogFactory(
            dispatch=campaign.dispatch,
            status=LogStatus.SKIPPED,
            skip_reason="suppressed",
            next_attempt_at=None,
        )
    CommunicationLogFactory(
        dispatch=campaign.dispatch, status=LogStatus.SENT, next_attempt_at=None
    )


def test_the_campaign_page_counts_deferred_capped_and_suppressed_messages(
    member_client, organization
):
    campaign = launched_campaign(organization)
    held_back_logs(campaign)

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    held_back = response.context["dashboard"]["held_back"]
    assert (held_back["deferred"], held_back["capped"], held_back["suppressed"]) == (
        2,
        1,
        3,
    )
    page = response.content.decode()
    assert 'id="campaign-held-back"' in page
    assert "skip_reason__exact=suppressed" in page


def test_the_lead_page_says_why_the_lead_was_not_messaged(member_client, organization):
    campaign = launched_campaign(organization)
    lead = LeadFactory(organization=organization)
    address_suppress(
        organization_id=organization.pk,
        channel="sms",
        address=lead.phone,
        reason="stop_keyword",
    )
    CommunicationLogFactory(
        dispatch=campaign.dispatch,
        lead=lead,
        status=LogStatus.SKIPPED,
        skip_reason="frequency_cap",
        next_attempt_at=None,
    )
    CommunicationLogFactory(
        dispatch=campaign.dispatch,
        lead=lead,
        dedupe_key="stopped",
        status=LogStatus.SKIPPED,
        skip_reason="suppressed",
        next_attempt_at=None,
    )
    CommunicationLogFactory(
        dispatch=campaign.dispatch,
        lead=lead,
        dedupe_key="later",
        next_attempt_at=timezone.now() + LATER,
    )

    response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    page = response.content.decode()
    assert "Why not messaged lately" in page
    assert "Replied STOP" in page  # its suppressed address, and why
    assert "not sent: over the frequency cap" in page
    assert "not sent: suppressed" in page
    assert "deferred until" in page


def test_a_lead_nothing_held_back_says_so(member_client, organization):
    lead = LeadFactory(organization=organization)

    response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    assert "Nothing held back" in response.content.decode()
