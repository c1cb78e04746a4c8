"""The campaign page's "Test send": find a lead, give your address, see the outcome."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.models import Campaign
from crm.models import Membership
from messaging.models import CommunicationLog
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    from config.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)


@pytest.fixture
def campaign(organization):
    return CampaignFactory(organization=organization, template="Hi {{name}}")


def url(campaign) -> str:
    return reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])


def test_the_campaign_page_links_to_the_test_send(member_client, campaign):
    page = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    assert f'href="{url(campaign)}"' in page.content.decode()


def test_a_search_offers_the_matching_leads_only(member_client, campaign):
    LeadFactory(organization=campaign.organization, name="Ada Lovelace")
    LeadFactory(organization=campaign.organization, name="Grace Hopper")
    LeadFactory(name="Ada Elsewhere")  # another organization's

    page = member_client.get(url(campaign), {"q": "ada"})

    text = page.content.decode()
    assert page.status_code == 200
    assert "Ada Lovelace" in text
    assert "Grace Hopper" not in text and "Ada Elsewhere" not in text
    assert "Your phone number" in text


def test_sending_returns_to_the_campaign_with_the_outcome(member_client, campaign):
    lead = LeadFactory(organization=campaign.organization, name="Ada")

    response = member_client.post(
        url(campaign), {"lead": lead.pk, "to": "202 555 0147"}
    )

    assert response.status_code == 302
    assert response.url == reverse(
        "admin:campaigns_campaign_change", args=[campaign.pk]
    )
    (said,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "sent to +12025550147 (pending)" in said
    assert CommunicationLog.objects.get().body == "Hi Ada"
    assert Campaign.objects.get().test_dispatch.audience == 1


def test_a_bad_address_shows_the_form_again_with_the_reason(member_client, campaign):
    lead = LeadFactory(organization=campaign.organization)

    page = member_client.post(url(campaign), {"lead": lead.pk, "to": "nope"})

    assert page.status_code == 200
    assert "not a valid phone number" in page.content.decode()
    assert not CommunicationLog.objects.exists()


def test_a_lead_of_another_organization_cannot_be_chosen(member_client, campaign):
    stranger = LeadFactory()

    page = member_client.post(url(campaign), {"lead": stranger.pk, "to": "2025550147"})

    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert not CommunicationLog.objects.exists()


def test_a_viewer_gets_no_test_send(client, campaign):
    viewer = MembershipFactory(
        organization=campaign.organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.VIEWER,
    ).user
    client.force_login(viewer)
    lead = LeadFactory(organization=campaign.organization)

    response = client.post(url(campaign), {"lead": lead.pk, "to": "2025550147"})

    assert response.status_code == 302
    assert not CommunicationLog.objects.exists()
