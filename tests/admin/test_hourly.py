"""The campaign page's hourly chart: final hours from the hourly table, the rest from
the logs."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.dashboard import campaign_hourly
from automations.models import CampaignHourlyStat
from messaging.models import LogStatus
from tests.support.campaigns import launched_campaign, logs_for

pytestmark = pytest.mark.django_db


def this_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def test_final_stored_hours_are_read_from_the_table_and_later_ones_from_logs(
    organization,
):
    campaign = launched_campaign(organization)
    logs_for(campaign, statuses={LogStatus.DELIVERED: 2})  # this hour, in the logs
    earlier = this_hour() - timedelta(hours=2)
    stat = CampaignHourlyStat.objects.create(
        campaign=campaign, hour=earlier, sent=7, delivered=6, failed=1
    )
    # Refreshed after its hour ended: final.
    CampaignHourlyStat.objects.filter(pk=stat.pk).update(
        updated_at=earlier + timedelta(hours=1, minutes=5)
    )

    rows = campaign_hourly(campaign)

    assert [(row["bucket"], row["sent"], row["delivered"]) for row in rows] == [
        (earlier, 7, 6),
        (earlier + timedelta(hours=1), 0, 0),
        (this_hour(), 2, 2),
    ]


def test_an_hour_stored_before_it_ended_is_counted_from_the_logs(organization):
    campaign = launched_campaign(organization)
    logs_for(campaign, statuses={LogStatus.DELIVERED: 3})
    CampaignHourlyStat.objects.create(
        campaign=campaign, hour=this_hour(), sent=1, delivered=1
    )

    rows = campaign_hourly(campaign)

    assert [(row["sent"], row["delivered"]) for row in rows] == [(3, 3)]


def test_the_campaign_page_draws_the_stored_hours(member_client, organization):
    campaign = launched_campaign(organization)
    earlier = this_hour() - timedelta(hours=3)
    stat = CampaignHourlyStat.objects.create(
        campaign=campaign, hour=earlier, sent=42, delivered=40, failed=2
    )
    CampaignHourlyStat.objects.filter(pk=stat.pk).update(updated_at=timezone.now())

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    assert 'data-value="42"' in response.content.decode()
