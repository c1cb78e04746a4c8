"""No admin page issues a query per row: many rows cost what a few rows cost."""

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import (
    Appointment,
    CampaignHourlyStat,
    DailySnapshot,
    Enrollment,
    Invoice,
    NurtureSequence,
    NurtureStep,
)
from campaigns.models import CampaignChunk
from messaging.models import DeliveryReceipt
from tests.crm.factories import LeadFactory, SegmentFactory
from tests.support.campaigns import launched_campaign, logs_for

pytestmark = pytest.mark.django_db

# Session, user, membership, counts, the page's rows, filters' choices: a page
# needs about a dozen queries whatever its number of rows.
MAX_QUERIES = 20
ROWS = 40


@pytest.fixture
def many_rows(organization):
    campaigns = [launched_campaign(organization) for _ in range(ROWS // 4)]
    logs = []
    for campaign in campaigns:
        logs += logs_for(campaign, statuses={"delivered": 2, "failed": 2})
    for index, log in enumerate(logs):
        DeliveryReceipt.objects.create(
            vendor="simulator", vendor_ref=f"ref-{index}", status="DELIVERED", log=log
        )
        CampaignChunk.objects.create(
            campaign_id=log.dispatch.campaign.pk,
            index=index,
            job_id=f"job-{index}",
            lead_ids=[log.lead_id],
            created_at=timezone.now(),
        )
    SegmentFactory.create_batch(ROWS, organization=organization)
    LeadFactory.create_batch(ROWS, organization=organization)
    for day in range(ROWS):
        DailySnapshot.objects.create(
            organization=organization,
            date=timezone.localdate() - timezone.timedelta(days=day),
            computed_at=timezone.now(),
        )
        CampaignHourlyStat.objects.create(
            campaign=campaigns[0],
            hour=timezone.now() - timezone.timedelta(hours=day),
        )
    leads = LeadFactory.create_batch(ROWS, organization=organization)
    for index, lead in enumerate(leads):
        Appointment.objects.create(
            organization=organization,
            lead=lead,
            title="Visit",
            starts_at=timezone.now(),
        )
        Invoice.objects.create(
            organization=organization,
            lead=lead,
            amount=10,
            due_date=timezone.localdate(),
        )
        sequence = NurtureSequence.objects.create(
            organization=organization, name=f"Sequence {index}"
        )
        NurtureStep.objects.create(
            sequence=sequence, position=1, channel="sms", template="Hi"
        )
        Enrollment.objects.create(
            organization=organization, lead=lead, sequence=sequence
        )
    return campaigns


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:crm_lead_changelist",
        "admin:crm_segment_changelist",
        "admin:crm_organization_changelist",
        "admin:crm_membership_changelist",
        "admin:campaigns_campaign_changelist",
        "admin:campaigns_campaignchunk_changelist",
        "admin:campaigns_dead_letter",
        "admin:messaging_communicationlog_changelist",
        "admin:messaging_deliveryreceipt_changelist",
        "admin:messaging_dispatch_changelist",
        "admin:automations_dailysnapshot_changelist",
        "admin:automations_campaignhourlystat_changelist",
        "admin:automations_appointment_changelist",
        "admin:automations_invoice_changelist",
        "admin:automations_nurturesequence_changelist",
        "admin:automations_enrollment_changelist",
        "admin:automations_nurturestep_changelist",
        "admin:index",
    ],
)
def test_a_page_of_many_rows_takes_a_bounded_number_of_queries(
    member_client, many_rows, url_name, django_assert_max_num_queries
):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = member_client.get(reverse(url_name))

    assert response.status_code == 200


def test_the_campaign_page_with_its_dashboard_is_bounded(
    member_client, many_rows, django_assert_max_num_queries
):
    campaign = many_rows[0]
    logs_for(campaign, statuses={"delivered": ROWS, "failed": ROWS})

    with django_assert_max_num_queries(MAX_QUERIES + 5):
        response = member_client.get(
            reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        )

    assert response.status_code == 200


def test_the_lead_page_with_its_message_history_is_bounded(
    member_client, organization, django_assert_max_num_queries
):
    campaign = launched_campaign(organization)
    lead = LeadFactory(organization=organization)
    logs = logs_for(campaign, statuses={"delivered": ROWS})
    for log in logs:
        log.lead = lead
        log.dedupe_key = f"k{log.pk}"
        log.save()

    with django_assert_max_num_queries(MAX_QUERIES):
        response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    assert response.status_code == 200
