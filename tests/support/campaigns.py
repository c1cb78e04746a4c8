"""Campaigns in the states tests start from: with an audience, launched, chunked,
expanded, or with logs of given statuses, built without a broker."""

from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import expansion, lifecycle
from messaging.models import CommunicationLog, LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

EVERYONE = {"field": "visits", "op": "gte", "value": 0}


def campaign_with_leads(count: int, **campaign_fields) -> Campaign:
    """A draft campaign whose segment takes every one of `count` new leads."""
    organization = OrganizationFactory()
    LeadFactory.create_batch(count, organization=organization)
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    return CampaignFactory(
        organization=organization, segment=segment, **campaign_fields
    )


def launched_and_chunked(count: int, **campaign_fields) -> Campaign:
    """A campaign of `count` leads, launched and cut into chunks, none expanded."""
    campaign = campaign_with_leads(count, **campaign_fields)
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def expand_all(campaign: Campaign) -> None:
    """Expand every chunk of the campaign, as the expand tasks would."""
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)


def launched_campaign(organization, **fields) -> Campaign:
    """A campaign with its dispatch, as launch leaves it (no broker involved)."""
    return CampaignFactory(
        organization=organization,
        dispatch=DispatchFactory(organization=organization),
        status="running",
        total_leads=fields.pop("total_leads", 0),
        **fields,
    )


def logs_for(
    campaign: Campaign, *, statuses: dict[str, int], error_code: str = "spam"
) -> list[CommunicationLog]:
    """Logs in the campaign's dispatch: `statuses` says how many of each status."""
    now = timezone.now()
    logs = []
    for status, count in statuses.items():
        for _ in range(count):
            stamps = {}
            if status in (LogStatus.SENT, LogStatus.DELIVERED):
                stamps["sent_at"] = now
            if status == LogStatus.DELIVERED:
                stamps["delivered_at"] = now
            if status == LogStatus.FAILED:
                stamps.update(failed_at=now, error_code=error_code, attempts=3)
            logs.append(
                CommunicationLogFactory(
                    dispatch=campaign.dispatch,
                    lead=LeadFactory(organization=campaign.organization),
                    status=status,
                    **stamps,
                )
            )
    return logs
