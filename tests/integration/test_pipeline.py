"""The whole pipeline with real workers on Redis, against Postgres, counted exactly."""

import pytest
from django.conf import settings
from django.db.models import Count

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_launch
from messaging.models import CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.workers import accepted_counts, beat_duties, wait_for
from vendors.registry import get_adapter

pytestmark = pytest.mark.integration

RETRYABLE = {"rate_limited", "carrier_timeout", "service_error", "vendor_unavailable"}


def test_a_thousand_leads_go_through_the_pipeline_exactly(start_workers):
    organization = OrganizationFactory()
    leads = LeadFactory.create_batch(1000, organization=organization)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 0}
    )
    campaign = CampaignFactory(organization=organization, segment=segment)
    start_workers(2, MESSAGING_RETRY_BASE_SECONDS="0.3", SIMULATOR_SUCCESS_RATE="0.9")

    result = campaign_launch(campaign_id=campaign.pk)
    wait_for(
        lambda: (
            Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
        ),
        timeout=180,
        tick=beat_duties,
    )

    assert result.total_leads == 1000
    campaign.refresh_from_db()
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    per_lead = logs.values("lead_id").annotate(n=Count("id"))
    assert {row["lead_id"] for row in per_lead} == {lead.pk for lead in leads}
    assert {row["n"] for row in per_lead} == {1}
    assert not logs.exclude(
        status__in=[LogStatus.DELIVERED, LogStatus.FAILED, LogStatus.SKIPPED]
    ).exists()
    assert (
        dispatch_reconcile(dispatch_id=campaign.dispatch_id, repair=False).differences
        == {}
    )
    retried = logs.filter(attempts__gt=1)
    assert retried.exists()
    # A retryable failure is final only once its attempts are used up.
    assert not logs.filter(
        status=LogStatus.FAILED,
        error_code__in=RETRYABLE,
        attempts__lt=settings.MESSAGING_MAX_ATTEMPTS,
    ).exists()
    simulator = get_adapter("simulator")
    accepted = accepted_counts(simulator, logs.values_list("send_id", flat=True))
    assert max(accepted.values()) == 1
    assert sum(accepted.values()) == logs.exclude(sent_at=None).count()
