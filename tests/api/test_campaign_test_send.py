"""POST /api/campaigns/<id>/test-send: a 202 with the message, 400 with a reason."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from crm.models import Membership
from messaging.models import CommunicationLog
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(celery_app, "send_task", lambda *a, **k: None)


@pytest.fixture
def campaign(org):
    return CampaignFactory(organization=org, template="Hi {{name}}")


def url(campaign) -> str:
    return f"/api/campaigns/{campaign.pk}/test-send"


def test_a_test_send_is_accepted_with_its_message(api, org, campaign):
    lead = LeadFactory(organization=org, name="Ada")

    response = api.post(
        url(campaign), {"lead": lead.pk, "to": "202-555-0147"}, format="json"
    )

    assert response.status_code == 202, response.data
    log = CommunicationLog.objects.get()
    assert response.data == {
        "id": log.pk,
        "send_id": log.send_id,
        "status": "pending",
        "to": "+12025550147",
        "lead": lead.pk,
    }
    assert log.body == "Hi Ada"
    assert api.get(f"/api/campaigns/{campaign.pk}").data["stats"]["audience"] == 0


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"to": "+12025550147"}, "lead", "required"),
        ({"lead": "x", "to": "+12025550147"}, "lead", "valid integer"),
        ({"lead": "LEAD"}, "to", "required"),
        ({"lead": "LEAD", "to": "12"}, "to", "not a valid phone number"),
        ({"lead": "OTHER", "to": "+12025550147"}, "lead", "no such lead"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api, org, other_org, campaign, payload, field, reason
):
    ids = {
        "LEAD": LeadFactory(organization=org).pk,
        "OTHER": LeadFactory(organization=other_org).pk,
    }
    payload = {key: ids.get(value, value) for key, value in payload.items()}

    response = api.post(url(campaign), payload, format="json")

    assert response.status_code == 400
    assert reason in str(response.data[field][0])
    assert not CommunicationLog.objects.exists()


def test_a_viewer_may_not_test_send(org, campaign):
    viewer = MembershipFactory(organization=org, role=Membership.Role.VIEWER)
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer.user).key}"
    )
    lead = LeadFactory(organization=org)

    response = client.post(
        url(campaign), {"lead": lead.pk, "to": "+12025550147"}, format="json"
    )

    assert response.status_code == 403
    assert not CommunicationLog.objects.exists()


def test_another_organizations_campaign_is_not_found(api, other_org):
    campaign = CampaignFactory(organization=other_org)
    lead = LeadFactory(organization=other_org)

    response = api.post(
        url(campaign), {"lead": lead.pk, "to": "+12025550147"}, format="json"
    )

    assert response.status_code == 404
