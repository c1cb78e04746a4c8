"""Hourly campaign analytics: per campaign and hour, recounted in place."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import CampaignHourlyStat
from automations.services.analytics import campaign_hourly_stats_refresh
from automations.tasks import campaign_hourly_stats
from messaging.models import CommunicationLog
from messaging.services.dispatches import dispatch_create
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def campaign_with_logs(events: list[tuple[str, dt.datetime]]):
    campaign = CampaignFactory()
    campaign.dispatch = dispatch_create(
        organization=campaign.organization, label=campaign.name, channel="sms"
    )
    campaign.save()
    for field, moment in events:
        log = CommunicationLogFactory(
            dispatch=campaign.dispatch,
            lead=LeadFactory(organization=campaign.organization),
        )
        CommunicationLog.objects.filter(pk=log.pk).update(**{field: moment})
    return campaign


def series(campaign) -> list[tuple]:
    return list(
        CampaignHourlyStat.objects.filter(campaign=campaign)
        .order_by("hour")
        .values_list("hour", "sent", "delivered", "failed")
    )


def test_each_hour_counts_the_events_that_happened_in_it(clock):
    ten = timezone.now().replace(hour=10, minute=0)
    campaign = campaign_with_logs(
        [
            ("sent_at", ten + dt.timedelta(minutes=5)),
            ("sent_at", ten + dt.timedelta(minutes=59)),
            ("sent_at", ten + HOUR),
            ("delivered_at", ten + dt.timedelta(minutes=30)),
            ("failed_at", ten + 2 * HOUR + dt.timedelta(minutes=1)),
        ]
    )
    other = campaign_with_logs([("sent_at", ten)])

    written = campaign_hourly_stats_refresh(since=ten, until=ten + 2 * HOUR)
    again = campaign_hourly_stats_refresh(since=ten, until=ten + 2 * HOUR)

    assert written == again == 4
    assert series(campaign) == [
        (ten, 2, 1, 0),
        (ten + HOUR, 1, 0, 0),
        (ten + 2 * HOUR, 0, 0, 1),
    ]
    assert series(other) == [(ten, 1, 0, 0)]


def test_an_hour_whose_events_are_gone_is_zeroed(clock):
    ten = timezone.now().replace(hour=10, minute=0)
    campaign = campaign_with_logs([("sent_at", ten)])
    campaign_hourly_stats_refresh(since=ten, until=ten)

    CommunicationLog.objects.update(sent_at=None)
    campaign_hourly_stats_refresh(since=ten, until=ten)

    assert series(campaign) == [(ten, 0, 0, 0)]


def test_the_hourly_task_counts_the_last_hour_and_the_current_one(clock, eager):
    now = timezone.now()
    campaign = campaign_with_logs([("sent_at", now - HOUR), ("sent_at", now)])

    assert campaign_hourly_stats.apply().get() == 2
    hour = now.replace(minute=0, second=0, microsecond=0)
    assert series(campaign) == [(hour - HOUR, 1, 0, 0), (hour, 1, 0, 0)]
