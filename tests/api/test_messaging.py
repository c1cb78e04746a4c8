"""Communication logs and delivery receipts: filters, and other orgs' messages."""

import pytest

from messaging.models import DeliveryReceipt, LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(org):
    return CampaignFactory(organization=org, dispatch=DispatchFactory(organization=org))


def test_logs_filter_by_campaign_status_lead_and_error_code(api, org, campaign):
    failed = CommunicationLogFactory(
        dispatch=campaign.dispatch, status=LogStatus.FAILED, error_code="spam"
    )
    CommunicationLogFactory(dispatch=campaign.dispatch, status=LogStatus.SENT)
    CommunicationLogFactory(dispatch=DispatchFactory(organization=org))

    def ids(**params):
        return [log["id"] for log in api.get("/api/logs", params).json()["results"]]

    assert len(ids(campaign=campaign.pk)) == 2
    assert ids(campaign=campaign.pk, status="failed") == [failed.pk]
    assert ids(lead=failed.lead_id) == [failed.pk]
    assert ids(error_code="spam") == [failed.pk]
    assert api.get(f"/api/logs/{failed.pk}").json()["campaign"] == campaign.pk


def test_a_bad_log_filter_is_a_400(api):
    response = api.get("/api/logs", {"status": "lost", "campaign": "x"})

    assert response.status_code == 400
    assert {"status", "campaign"} <= response.json().keys()


def test_receipts_of_the_organizations_messages_are_listed(api, campaign):
    log = CommunicationLogFactory(dispatch=campaign.dispatch, vendor_ref="SIM-1")
    receipt = DeliveryReceipt.objects.create(
        vendor="simulator", vendor_ref="SIM-1", status="DELIVERED", log=log
    )

    listed = api.get("/api/receipts", {"campaign": campaign.pk}).json()["results"]

    assert [row["id"] for row in listed] == [receipt.pk]
    assert api.get(f"/api/receipts/{receipt.pk}").json()["log"] == log.pk


def test_another_organizations_logs_and_receipts_are_not_found(api, other_org):
    theirs = CommunicationLogFactory(dispatch=DispatchFactory(organization=other_org))
    receipt = DeliveryReceipt.objects.create(
        vendor="simulator", vendor_ref="X", status="DELIVERED", log=theirs
    )

    assert api.get(f"/api/logs/{theirs.pk}").status_code == 404
    assert api.get("/api/logs").json()["results"] == []
    assert api.get(f"/api/receipts/{receipt.pk}").status_code == 404
    assert api.get("/api/receipts").json()["results"] == []


def test_a_bad_receipt_filter_is_a_400(api):
    response = api.get("/api/receipts", {"status": "LOST", "log": "-3"})

    assert response.status_code == 400
    assert {"status", "log"} <= response.json().keys()
