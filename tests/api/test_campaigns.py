"""Campaigns over the API: create with chunking and stats, actions, other orgs'."""

import pytest

from campaigns.models import Campaign
from config.celery import app as celery_app
from messaging.models import Dispatch
from tests.campaigns.factories import EXAMPLE_TEMPLATE, CampaignFactory
from tests.crm.factories import LeadFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Lifecycle services enqueue after commit; these tests look at the API only."""
    monkeypatch.setattr(celery_app, "send_task", lambda *a, **k: None)


@pytest.fixture
def segment(org):
    LeadFactory.create_batch(7, organization=org)
    return SegmentFactory(
        organization=org, rules={"field": "visits", "op": "gte", "value": 0}
    )


def create(api, segment, **fields):
    payload = {
        "name": "Spring",
        "channel": "sms",
        "template": EXAMPLE_TEMPLATE,
        "segment": segment.pk,
        **fields,
    }
    return api.post("/api/campaigns", payload, format="json")


def test_create_answers_with_campaign_chunking_and_stats(api, segment):
    response = create(api, segment, chunk_size=3)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["chunking"] == {"total_leads": 7, "total_chunks": 3, "chunk_size": 3}
    assert body["stats"] == {
        "audience": 0,
        "sent": 0,
        "failed": 0,
        "delivered": 0,
        "no_receipt": 0,
        "unknown": 0,
    }


def test_without_chunk_size_the_default_for_the_audience_is_used(api, segment):
    body = create(api, segment).json()

    assert body["chunking"] == {"total_leads": 7, "total_chunks": 1, "chunk_size": 50}


@pytest.mark.parametrize("chunk_size", [0, 201, "x"])
def test_a_chunk_size_out_of_range_is_a_400(api, segment, chunk_size):
    response = create(api, segment, chunk_size=chunk_size)

    assert response.status_code == 400
    assert "chunk_size" in response.json()


def test_a_bad_template_is_a_400_under_template(api, segment):
    response = create(api, segment, template="Hi {{name")

    assert response.status_code == 400
    assert "template" in response.json()


def test_an_email_campaign_needs_a_subject(api, segment):
    response = create(api, segment, channel="email")

    assert response.status_code == 400
    assert "subject" in response.json()


def test_another_organizations_segment_cannot_be_used(api, other_org):
    theirs = SegmentFactory(organization=other_org)

    response = create(api, theirs)

    assert response.status_code == 400
    assert "segment" in response.json()


def test_a_campaign_is_launched_paused_resumed_and_cancelled_through_the_api(
    api, segment, django_capture_on_commit_callbacks
):
    campaign_id = create(api, segment, chunk_size=2).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        launched = api.post(f"/api/campaigns/{campaign_id}/launch")
        paused = api.post(f"/api/campaigns/{campaign_id}/pause")
        resumed = api.post(f"/api/campaigns/{campaign_id}/resume")
        cancelled = api.post(f"/api/campaigns/{campaign_id}/cancel")

    assert launched.status_code == 202
    assert launched.json()["status"] == "running"
    assert launched.json()["chunking"] == {
        "total_leads": 7,
        "total_chunks": 4,
        "chunk_size": 2,
    }
    assert paused.json()["status"] == "paused"
    assert resumed.json()["status"] == "running"
    assert cancelled.json()["status"] == "cancelled"
    assert "messages_cancelled" in cancelled.json()


def test_an_action_the_state_does_not_allow_is_a_409(api, segment):
    campaign_id = create(api, segment).json()["id"]

    response = api.post(f"/api/campaigns/{campaign_id}/pause")

    assert response.status_code == 409
    assert "pause" in response.json()["detail"]
    assert Campaign.objects.get(pk=campaign_id).status == Campaign.Status.DRAFT


def test_a_chunk_size_above_a_lowered_maximum_launches_as_shown(api, segment, settings):
    # given a campaign saved with 150 leads a chunk, then a maximum lowered to 100
    created = create(api, segment, chunk_size=150).json()
    settings.CAMPAIGN_CHUNK_SIZE_MAX = 100
    shown = api.get(f"/api/campaigns/{created['id']}").json()["chunking"]

    # when
    response = api.post(f"/api/campaigns/{created['id']}/launch")

    # then it launches cut as the campaign showed before launch
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "running"
    assert response.json()["chunking"] == shown


def test_a_launched_campaigns_stats_carry_its_status_progress_and_counters(
    api, segment
):
    campaign_id = create(api, segment).json()["id"]
    api.post(f"/api/campaigns/{campaign_id}/launch")

    stats = api.get(f"/api/campaigns/{campaign_id}/stats").json()

    assert stats["status"] == "running"
    assert stats["progress"] == 0.0
    assert {"audience", "sent", "delivered", "failed", "cost"} <= stats.keys()


def test_campaigns_are_listed_and_filtered_by_status(api, org, segment):
    create(api, segment)
    CampaignFactory(organization=org, status=Campaign.Status.COMPLETED)

    drafts = api.get("/api/campaigns", {"status": "draft"}).json()["results"]

    assert [campaign["status"] for campaign in drafts] == ["draft"]


def test_another_organizations_campaign_is_not_found(api, other_org):
    theirs = CampaignFactory(organization=other_org)

    assert api.get(f"/api/campaigns/{theirs.pk}").status_code == 404
    for action in ("launch", "pause", "resume", "cancel"):
        assert api.post(f"/api/campaigns/{theirs.pk}/{action}").status_code == 404
    assert api.get(f"/api/campaigns/{theirs.pk}/stats").status_code == 404
    assert Campaign.objects.get(pk=theirs.pk).status == Campaign.Status.DRAFT


def test_stats_count_messages_without_receipt_as_final(api, segment):
    # given a launched campaign whose messages all ended without receipt
    campaign_id = create(api, segment).json()["id"]
    api.post(f"/api/campaigns/{campaign_id}/launch")
    campaign = Campaign.objects.get(pk=campaign_id)
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(
        audience=7, expected_audience=7, sent=7, no_receipt=7
    )

    # when its stats and the campaign are read
    stats = api.get(f"/api/campaigns/{campaign_id}/stats").json()
    listed = api.get(f"/api/campaigns/{campaign_id}").json()

    # then each says how many had no receipt, and the run is wholly final
    assert (stats["no_receipt"], stats["progress"]) == (7, 1.0)
    assert listed["stats"]["no_receipt"] == 7
