"""Segments over the API: CRUD, preview, rule errors, other orgs' segments."""

import pytest

from crm.models import Segment
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, SegmentFactory

pytestmark = pytest.mark.django_db

BIG_SPENDERS = {"field": "total_spend", "op": "gte", "value": 100}


def test_a_segment_is_created_with_its_audience_counted(api, org):
    LeadFactory(organization=org, total_spend=500)
    LeadFactory(organization=org, total_spend=5)

    response = api.post(
        "/api/segments", {"name": "Big", "rules": BIG_SPENDERS}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["audience_size"] == 1


def test_invalid_rules_are_a_400_under_rules(api):
    response = api.post(
        "/api/segments",
        {"name": "Bad", "rules": {"field": "nope", "op": "eq", "value": 1}},
        format="json",
    )

    assert response.status_code == 400
    assert "rules" in response.json()


def test_a_taken_name_is_a_400(api, org):
    SegmentFactory(organization=org, name="Taken")

    response = api.post(
        "/api/segments", {"name": "Taken", "rules": BIG_SPENDERS}, format="json"
    )

    assert response.status_code == 400


def test_a_segment_is_updated_and_deleted(api, org):
    segment = SegmentFactory(organization=org)

    response = api.patch(
        f"/api/segments/{segment.pk}", {"rules": BIG_SPENDERS}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["rules"] == BIG_SPENDERS
    assert api.delete(f"/api/segments/{segment.pk}").status_code == 204


def test_a_segment_used_by_a_campaign_cannot_be_deleted(api, org):
    campaign = CampaignFactory(organization=org)

    response = api.delete(f"/api/segments/{campaign.segment_id}")

    assert response.status_code == 409
    assert Segment.objects.filter(pk=campaign.segment_id).exists()


def test_preview_gives_a_count_and_a_sample(api, org):
    LeadFactory.create_batch(3, organization=org, total_spend=500)
    segment = SegmentFactory(organization=org, rules=BIG_SPENDERS)

    saved = api.get(f"/api/segments/{segment.pk}/preview").json()
    unsaved = api.post(
        "/api/segments/preview",
        {"rules": BIG_SPENDERS, "sample_size": 2},
        format="json",
    ).json()

    assert saved["count"] == 3
    assert len(saved["sample"]) == 3
    assert unsaved["count"] == 3
    assert len(unsaved["sample"]) == 2


def test_preview_of_invalid_rules_is_a_400(api):
    response = api.post("/api/segments/preview", {"rules": {"all": "x"}}, format="json")

    assert response.status_code == 400
    assert "rules" in response.json()


def test_a_date_whose_day_ends_past_year_9999_is_a_400_naming_the_value(api, org):
    # given a bare date whose day ends in year 10000
    rules = {"field": "created_at", "op": "eq", "value": "9999-12-31"}

    # when
    preview = api.post("/api/segments/preview", {"rules": rules}, format="json")
    created = api.post("/api/segments", {"name": "Far", "rules": rules}, format="json")

    # then
    for response in (preview, created):
        assert response.status_code == 400
        assert response.json()["rules"][0].startswith("rules.value: created_at")
    assert not Segment.objects.filter(organization=org).exists()


def test_preview_never_shows_another_organizations_leads(api, other_org):
    LeadFactory(organization=other_org, total_spend=500)

    response = api.post("/api/segments/preview", {"rules": BIG_SPENDERS}, format="json")

    assert response.json()["count"] == 0


def test_another_organizations_segment_is_not_found(api, other_org):
    theirs = SegmentFactory(organization=other_org)

    assert api.get(f"/api/segments/{theirs.pk}").status_code == 404
    assert api.get(f"/api/segments/{theirs.pk}/preview").status_code == 404
    assert (
        api.patch(
            f"/api/segments/{theirs.pk}", {"name": "x"}, format="json"
        ).status_code
        == 404
    )
    assert api.delete(f"/api/segments/{theirs.pk}").status_code == 404
