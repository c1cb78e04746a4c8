"""Free text the API stores has bounds: past one, a 400 names the field."""

import pytest

from crm.models import Lead, Segment
from tests.automations.factories import NurtureSequenceFactory
from tests.campaigns.factories import EXAMPLE_TEMPLATE
from tests.crm.factories import SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "attributes",
    [
        {"note": "x" * 1001},
        {"notes": ["x" * 600, "y" * 600]},
        {f"key{n}": n for n in range(101)},
    ],
)
def test_lead_attributes_past_their_bounds_are_a_400_under_attributes(
    api, org, attributes
):
    # given / when
    response = api.post(
        "/api/leads",
        {"external_id": "A-1", "attributes": attributes},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert "attributes" in response.json()
    assert not Lead.objects.filter(organization=org).exists()


def test_a_segment_description_past_its_bound_is_a_400(api, org):
    # given / when
    response = api.post(
        "/api/segments",
        {
            "name": "Long",
            "description": "x" * 5001,
            "rules": {"field": "visits", "op": "gte", "value": 0},
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert "description" in response.json()
    assert not Segment.objects.filter(organization=org).exists()


def test_a_campaign_template_past_its_bound_is_a_400(api, org):
    # given
    segment = SegmentFactory(organization=org)

    # when
    response = api.post(
        "/api/campaigns",
        {
            "name": "Long",
            "channel": "email",
            "subject": "Hello",
            "template": EXAMPLE_TEMPLATE + "x" * 10_000,
            "segment": segment.pk,
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert "template" in response.json()


def test_a_sequence_description_and_step_template_past_their_bounds_are_a_400(api, org):
    # given
    sequence = NurtureSequenceFactory(organization=org)
    step = {"position": 1, "delay_minutes": 0, "channel": "sms"}

    # when
    long_description = api.patch(
        f"/api/nurture-sequences/{sequence.pk}",
        {"description": "x" * 5001},
        format="json",
    )
    long_template = api.patch(
        f"/api/nurture-sequences/{sequence.pk}",
        {"steps": [{**step, "template": "x" * 10_001}]},
        format="json",
    )

    # then
    assert long_description.status_code == 400
    assert "description" in long_description.json()
    assert long_template.status_code == 400
    assert "template" in str(long_template.json()["steps"])
