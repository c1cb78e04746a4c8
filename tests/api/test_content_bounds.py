"""Content bounds over the API: a campaign or nurture step too long is a 400."""

import pytest

from campaigns.models import Campaign
from tests.crm.factories import SegmentFactory
from tests.support.campaigns import EVERYONE

pytestmark = pytest.mark.django_db

SMS_LIMIT = 1600


def test_the_api_refuses_an_sms_template_too_long(api, org):
    # given a member's segment; when a campaign with a 1,601-character SMS
    # template is posted
    segment = SegmentFactory(organization=org, rules=EVERYONE)
    response = api.post(
        "/api/campaigns",
        {
            "name": "Long",
            "channel": "sms",
            "template": "x" * (SMS_LIMIT + 1),
            "segment": segment.pk,
        },
        format="json",
    )

    # then it is a 400 naming the template
    assert response.status_code == 400
    assert "1600" in response.json()["template"][0]
    assert not Campaign.objects.exists()


def test_the_api_refuses_a_nurture_step_too_long(api):
    # when a sequence whose step's SMS template is too long is posted
    response = api.post(
        "/api/nurture-sequences",
        {
            "name": "Long",
            "steps": [
                {
                    "position": 1,
                    "delay_minutes": 0,
                    "channel": "sms",
                    "template": "x" * (SMS_LIMIT + 1),
                }
            ],
        },
        format="json",
    )

    # then it is a 400 naming the step's template
    assert response.status_code == 400
    assert "1600" in str(response.json()["steps"])
