"""The front page: today's KPIs, 30 days from the snapshots, links for operators."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import DailySnapshot
from messaging.models import LogStatus
from tests.crm.factories import LeadFactory
from tests.support.campaigns import launched_campaign, logs_for

pytestmark = pytest.mark.django_db


def test_the_front_page_shows_todays_kpis(member_client, organization):
    campaign = launched_campaign(organization)
    logs_for(campaign, statuses={LogStatus.DELIVERED: 3, LogStatus.FAILED: 1})
    logs_for(launched_campaign(LeadFactory().organization), statuses={"delivered": 5})

    response = member_client.get(reverse("admin:index"))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-kpi="sent"><span class="kpi-value">3<' in page
    assert 'data-kpi="delivered"><span class="kpi-value">3<' in page
    assert 'data-kpi="failed"><span class="kpi-value">1<' in page
    assert 'data-kpi="delivery_rate"><span class="kpi-value">75.0%<' in page
    assert 'data-kpi="running_campaigns"' in page


def test_past_days_come_from_the_snapshots(member_client, organization):
    yesterday = timezone.localdate() - timezone.timedelta(days=1)
    DailySnapshot.objects.create(
        organization=organization,
        date=yesterday,
        messages_sent=41,
        messages_delivered=40,
        messages_failed=1,
        delivery_rate=Decimal("0.9756"),
        computed_at=timezone.now(),
    )

    response = member_client.get(reverse("admin:index"))

    page = response.content.decode()
    assert f"{yesterday:%m-%d} sent: 41" in page
    assert f"{yesterday:%m-%d} delivered: 40" in page
    assert "1 day(s) from the nightly snapshots" in page
    assert page.count('class="bar bar-sent"') == 30


def test_operators_get_links_to_schedules_and_task_results(operator_client):
    response = operator_client.get(reverse("admin:index"))

    page = response.content.decode()
    assert reverse("admin:django_celery_beat_periodictask_changelist") in page
    assert reverse("admin:django_celery_results_taskresult_changelist") in page
    assert reverse("admin:campaigns_dead_letter") in page


def test_a_member_sees_no_links_they_may_not_follow(member_client):
    response = member_client.get(reverse("admin:index"))

    assert "periodictask" not in response.content.decode()


def test_days_with_snapshots_are_not_counted_from_the_messages(
    member_client, organization
):
    for day in range(1, 30):
        DailySnapshot.objects.create(
            organization=organization,
            date=timezone.localdate() - timezone.timedelta(days=day),
            messages_sent=day,
            computed_at=timezone.now(),
        )

    response = member_client.get(reverse("admin:index"))

    assert "29 day(s) from the nightly snapshots" in response.content.decode()
