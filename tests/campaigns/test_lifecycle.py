"""A campaign's life: launch, chunking, expansion, pause, cancel, completion, rerun."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, CampaignChunk
from campaigns.services import expansion, lifecycle
from crm.models import Channel
from crm.services.segments import segment_update
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_finish_if_done
from messaging.services.receipts import receipts_process, receipts_store
from messaging.services.sending import send_due
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.campaigns import (
    campaign_with_leads,
    expand_all,
    launched_and_chunked,
)
from tests.support.messaging import assert_counters_match_logs
from tests.support.scripted_vendor import ScriptedVendor, accept
from vendors.base import Receipt

pytestmark = pytest.mark.django_db


def test_create_rejects_a_bad_template_naming_the_placeholder():
    campaign = campaign_with_leads(0)

    with pytest.raises(ValidationError) as error:
        lifecycle.campaign_create(
            organization=campaign.organization,
            name="Bad",
            channel=Channel.SMS,
            segment=campaign.segment,
            template="Hi {{nmae}}",
        )

    assert "unknown placeholder {{nmae}}" in error.value.message_dict["template"][0]


def test_create_rejects_an_email_without_subject_and_a_bad_chunk_size():
    campaign = campaign_with_leads(0)

    with pytest.raises(ValidationError) as error:
        lifecycle.campaign_create(
            organization=campaign.organization,
            name="Bad",
            channel=Channel.EMAIL,
            segment=campaign.segment,
            template="Hello",
            chunk_size=500,
        )

    assert set(error.value.message_dict) == {"subject", "chunk_size"}


def test_launch_runs_the_campaign_and_reports_how_it_is_cut():
    campaign = campaign_with_leads(120)

    result = lifecycle.campaign_launch(campaign_id=campaign.pk)

    assert result.chunking == {"total_leads": 120, "total_chunks": 2, "chunk_size": 100}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.dispatch.status == Dispatch.Status.ACTIVE


def test_a_running_campaign_cannot_be_launched_again():
    campaign = campaign_with_leads(1)
    lifecycle.campaign_launch(campaign_id=campaign.pk)

    with pytest.raises(lifecycle.CampaignStateError, match="only a draft or scheduled"):
        lifecycle.campaign_launch(campaign_id=campaign.pk)


def test_an_edit_schedules_a_draft_and_never_touches_a_launched_campaign():
    # Given a draft, and a campaign already launched
    draft = campaign_with_leads(1)
    launched = launched_and_chunked(1)
    content = {
        "name": "Later",
        "channel": Channel.SMS,
        "template": "Hi {{name}}",
        "scheduled_at": timezone.now() + timezone.timedelta(days=1),
    }

    # When each is edited with a time
    scheduled = lifecycle.campaign_update(
        campaign_id=draft.pk, segment=draft.segment, **content
    )
    with pytest.raises(lifecycle.CampaignStateError, match="cannot edit it"):
        lifecycle.campaign_update(
            campaign_id=launched.pk, segment=launched.segment, **content
        )

    # Then the draft is scheduled with its new content; the launched one is as it was
    assert (scheduled.status, scheduled.name) == (Campaign.Status.SCHEDULED, "Later")
    stored = Campaign.objects.get(pk=launched.pk)
    assert (stored.status, stored.name, stored.scheduled_at) == (
        Campaign.Status.RUNNING,
        launched.name,
        None,
    )


def test_chunking_stores_every_lead_once_in_chunk_messages():
    campaign = launched_and_chunked(130, chunk_size=40)

    chunks = list(campaign.chunks.order_by("index"))
    lead_ids = [lead_id for chunk in chunks for lead_id in chunk.lead_ids]
    assert [len(chunk.lead_ids) for chunk in chunks] == [40, 40, 40, 10]
    assert lead_ids == sorted(campaign.organization.leads.values_list("pk", flat=True))
    message = chunks[0].as_message()
    assert set(message) == {"job_id", "campaign_id", "lead_ids", "created_at"}
    assert re.fullmatch(
        rf"job-{campaign.pk}-0-\d{{13}}-[0-9a-f]{{6}}", message["job_id"]
    )
    assert campaign.dispatch.expected_audience == 130


def test_one_message_a_batch_of_chunks_reaches_every_lead(
    monkeypatch, django_capture_on_commit_callbacks
):
    from campaigns import tasks

    published = []
    monkeypatch.setattr(tasks.expand_chunk, "delay", published.append)
    monkeypatch.setattr(expansion, "EXPAND_BATCH_CHUNKS", 5)
    campaign = campaign_with_leads(120, chunk_size=10)
    lifecycle.campaign_launch(campaign_id=campaign.pk)

    with django_capture_on_commit_callbacks(execute=True):
        expansion.campaign_chunk_audience(campaign_id=campaign.pk)

    # 12 chunks in batches of 5: the first, sixth and eleventh are published
    assert [message["job_id"].split("-")[2] for message in published] == [
        "0",
        "5",
        "10",
    ]
    for message in published:
        expansion.chunk_expand(
            job_id=message["job_id"], batch=expansion.EXPAND_BATCH_CHUNKS
        )
    assert set(campaign.chunks.values_list("status", flat=True)) == {
        CampaignChunk.Status.EXPANDED
    }
    campaign.refresh_from_db()
    assert CommunicationLog.objects.filter(dispatch=campaign.dispatch).count() == 120


def test_a_resumed_campaign_gets_one_message_for_each_group_left(monkeypatch):
    monkeypatch.setattr(expansion, "EXPAND_BATCH_CHUNKS", 5)
    campaign = launched_and_chunked(120, chunk_size=10)
    first = campaign.chunks.get(index=0)
    expansion.chunk_expand(job_id=first.job_id)  # a group of one: only chunk 0

    queued = campaign.chunks.filter(status=CampaignChunk.Status.QUEUED)
    leaders = list(expansion.batch_leaders(queued.order_by("index")))

    assert [chunk.index for chunk in leaders] == [1, 5, 10]
    for leader in leaders:
        expansion.chunk_expand(
            job_id=leader.job_id, batch=expansion.EXPAND_BATCH_CHUNKS
        )
    assert not queued.exists()
    campaign.refresh_from_db()
    assert CommunicationLog.objects.filter(dispatch=campaign.dispatch).count() == 120


def test_a_segment_edited_after_launch_leaves_the_launched_audience_alone():
    # given a campaign launched to the leads with 5+ visits, not yet chunked
    organization = OrganizationFactory()
    regulars = LeadFactory.create_batch(3, organization=organization, visits=7)
    newcomers = LeadFactory.create_batch(2, organization=organization, visits=0)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 5}
    )
    campaign = CampaignFactory(organization=organization, segment=segment)
    lifecycle.campaign_launch(campaign_id=campaign.pk)

    # when the segment is edited to the newcomers before chunking runs
    segment_update(segment=segment, rules={"field": "visits", "op": "eq", "value": 0})
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)

    # then the campaign goes to the audience it was launched with
    campaign.refresh_from_db()
    chunked = {
        pk for ids in campaign.chunks.values_list("lead_ids", flat=True) for pk in ids
    }
    assert chunked == {lead.pk for lead in regulars}
    assert campaign.total_leads == 3
    assert not chunked & {lead.pk for lead in newcomers}
    # and the next campaign to the segment goes to its new audience
    later = CampaignFactory(organization=organization, segment=segment)
    lifecycle.campaign_launch(campaign_id=later.pk)
    expansion.campaign_chunk_audience(campaign_id=later.pk)
    later.refresh_from_db()
    assert later.total_leads == 2


def test_chunking_twice_chunks_nothing_twice():
    campaign = launched_and_chunked(30, chunk_size=10)

    again = expansion.campaign_chunk_audience(campaign_id=campaign.pk)

    assert again.chunks_created == 0
    assert campaign.chunks.count() == 3


def test_expansion_creates_one_pending_log_per_lead_personalized():
    campaign = launched_and_chunked(5)
    lead = campaign.organization.leads.order_by("pk").first()

    expand_all(campaign)

    log = CommunicationLog.objects.get(lead=lead)
    assert log.status == LogStatus.PENDING
    assert log.body.startswith(f"Hi {lead.name}, you have spent $")
    assert re.fullmatch(
        rf"send-{campaign.pk}-{lead.pk}-\d{{13}}-[0-9a-f]{{6}}", log.send_id
    )
    assert (log.attempts, log.recipient) == (0, lead.phone)
    assert_counters_match_logs(campaign.dispatch)


def test_expanding_a_chunk_twice_changes_nothing():
    campaign = launched_and_chunked(5)
    expand_all(campaign)
    before = list(CommunicationLog.objects.order_by("pk").values())

    CampaignChunk.objects.update(status=CampaignChunk.Status.QUEUED)
    expand_all(campaign)

    assert list(CommunicationLog.objects.order_by("pk").values()) == before
    assert_counters_match_logs(campaign.dispatch)


def test_unreachable_leads_are_skipped_with_the_reason():
    campaign = campaign_with_leads(0)
    organization = campaign.organization
    LeadFactory(organization=organization, phones=[], phone="")
    LeadFactory(organization=organization, sms_opt_out=True)
    LeadFactory(organization=organization, phones=["12345"], phone="12345")
    gone = LeadFactory(organization=organization)
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)
    gone.delete()

    expand_all(campaign)
    campaign.refresh_from_db()

    reasons = sorted(CommunicationLog.objects.values_list("skip_reason", flat=True))
    assert reasons == ["invalid_phone", "lead_deleted", "no_phone", "opted_out"]
    campaign.dispatch.refresh_from_db()
    assert (campaign.dispatch.skipped, campaign.dispatch.pending) == (4, 0)


def test_a_paused_campaign_sends_nothing_until_resumed():
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    vendor = ScriptedVendor(accept)

    lifecycle.campaign_pause(campaign_id=campaign.pk)
    paused = send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)
    lifecycle.campaign_resume(campaign_id=campaign.pk)
    resumed = send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)

    assert (paused.claimed, resumed.sent) == (0, 3)


def test_cancel_marks_what_is_not_sent_cancelled():
    campaign = launched_and_chunked(4, chunk_size=2)
    first_chunk = campaign.chunks.order_by("index").first()
    expansion.chunk_expand(job_id=first_chunk.job_id)

    cancelled = lifecycle.campaign_cancel(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert (cancelled, campaign.status) == (2, Campaign.Status.CANCELLED)
    assert set(campaign.chunks.values_list("status", flat=True)) == {
        "expanded",
        "cancelled",
    }
    assert_counters_match_logs(campaign.dispatch)


def test_campaign_completes_once_every_log_is_final():
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    logs = list(CommunicationLog.objects.filter(dispatch=campaign.dispatch_id))
    assert not dispatch_finish_if_done(dispatch_id=campaign.dispatch_id)

    receipts_store(
        vendor="scripted",
        receipts=[
            Receipt(log.vendor_ref, "DELIVERED", None, log.sent_at, {}) for log in logs
        ],
    )
    outcome = receipts_process()
    lifecycle.campaign_mark_completed(dispatch_id=campaign.dispatch_id)

    campaign.refresh_from_db()
    assert outcome.finished_dispatches == [campaign.dispatch_id]
    assert campaign.status == Campaign.Status.COMPLETED
    assert_counters_match_logs(campaign.dispatch)


def test_a_dead_chunk_is_kept_with_its_error_and_rerun():
    campaign = launched_and_chunked(4, chunk_size=2)
    dead = campaign.chunks.order_by("index").first()
    expansion.chunk_mark_dead(job_id=dead.job_id, error="OperationalError: gone")

    result = lifecycle.campaign_rerun(
        campaign_id=campaign.pk, failed=False, dead_chunks=True
    )
    expansion.chunk_expand(job_id=dead.job_id)

    dead.refresh_from_db()
    assert result.chunks_requeued == 1
    assert dead.status == CampaignChunk.Status.EXPANDED
