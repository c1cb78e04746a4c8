"""Every task of the pipeline, run twice on the same input, leaves the same state.

Brokers deliver at least once and the sweeper re-enqueues what looks lost, so any
task may run again after it already did its work. Each test brings the pipeline to
the point where the task runs, runs it, takes a picture of everything a marketer
could see (campaign, chunks, logs, receipts, counters, what the vendor accepted),
runs it again and compares. The tasks run in this process against the real
simulator on Redis; what they enqueue goes to the test broker, where no worker runs.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns import tasks as campaign_tasks
from campaigns.models import Campaign, CampaignChunk
from campaigns.services import expansion, lifecycle
from config.queues import Queue
from messaging import tasks as messaging_tasks
from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.broker import take_queued
from tests.support.campaigns import EVERYONE
from tests.support.workers import accepted_counts
from vendors.registry import get_adapter

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LOG_FIELDS = (
    "pk",
    "lead_id",
    "send_id",
    "status",
    "skip_reason",
    "attempts",
    "next_attempt_at",
    "vendor_ref",
    "error_code",
    "body",
    "cost",
    "sent_at",
    "delivered_at",
    "failed_at",
)
DISPATCH_FIELDS = (
    "status",
    "audience",
    "skipped",
    "pending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "cost",
)


@pytest.fixture(autouse=True)
def simulator():
    """The real simulator, emptied, so that what it accepted can be counted."""
    adapter = get_adapter("simulator")
    adapter.reset()
    yield adapter
    adapter.reset()


def picture(campaign: Campaign, simulator) -> dict:
    """Everything about the campaign that a task could change."""
    campaign.refresh_from_db()
    logs = CommunicationLog.objects.filter(dispatch_id=campaign.dispatch_id)
    return {
        "campaign": (campaign.status, campaign.total_leads, campaign.chunking_done),
        "chunks": list(
            campaign.chunks.order_by("index").values_list(
                "job_id", "status", "lead_ids"
            )
        ),
        "logs": list(logs.order_by("pk").values_list(*LOG_FIELDS)),
        "receipts": list(
            DeliveryReceipt.objects.order_by("pk").values_list(
                "vendor_ref", "status", "log_id", "outcome"
            )
        ),
        "dispatch": (
            list(
                Dispatch.objects.filter(pk=campaign.dispatch_id).values_list(
                    *DISPATCH_FIELDS
                )
            )
            if campaign.dispatch_id
            else []
        ),
        "accepted": accepted_counts(simulator, logs.values_list("send_id", flat=True)),
    }


def assert_second_run_changes_nothing(campaign, simulator, task, *args) -> dict:
    task(*args)
    after_first = picture(campaign, simulator)
    task(*args)
    assert picture(campaign, simulator) == after_first
    return after_first


def launched(count: int = 12, **fields) -> Campaign:
    organization = OrganizationFactory()
    LeadFactory.create_batch(count, organization=organization)
    LeadFactory(organization=organization, phones=[])  # skipped: no phone
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = CampaignFactory(
        organization=organization, segment=segment, chunk_size=5, **fields
    )
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def expanded(**fields) -> Campaign:
    campaign = launched(**fields)
    campaign_tasks.chunk_campaign(campaign.pk)
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)
    return campaign


def sent(**fields) -> Campaign:
    campaign = expanded(**fields)
    messaging_tasks.send_batch(campaign.dispatch_id)
    return campaign


def test_chunking_a_campaign_again_changes_nothing(simulator):
    campaign = launched()

    state = assert_second_run_changes_nothing(
        campaign, simulator, campaign_tasks.chunk_campaign, campaign.pk
    )

    assert len(state["chunks"]) == 3
    assert state["campaign"][2] is True


def test_expanding_a_chunk_again_changes_nothing(simulator):
    campaign = launched()
    campaign_tasks.chunk_campaign(campaign.pk)
    message = campaign.chunks.order_by("index").first().as_message()

    state = assert_second_run_changes_nothing(
        campaign, simulator, campaign_tasks.expand_chunk, message
    )

    # The task takes the campaign's queued chunks with its own (up to
    # EXPAND_BATCH_CHUNKS): all three chunks, 13 leads.
    assert len(state["logs"]) == 13


def test_enqueueing_chunks_again_changes_nothing(simulator):
    campaign = launched()
    campaign_tasks.chunk_campaign(campaign.pk)

    state = assert_second_run_changes_nothing(
        campaign, simulator, campaign_tasks.enqueue_chunks, campaign.pk
    )

    assert {status for _, status, _ in state["chunks"]} == {CampaignChunk.Status.QUEUED}


def test_sending_a_batch_again_sends_no_message_twice(simulator):
    campaign = expanded()

    state = assert_second_run_changes_nothing(
        campaign, simulator, messaging_tasks.send_batch, campaign.dispatch_id
    )

    assert set(state["accepted"].values()) == {1}
    assert any(log[3] == LogStatus.SENT for log in state["logs"])


def test_the_send_dispatcher_run_twice_queues_one_send_of_the_due_batch_each_run(
    simulator,
):
    # Given a campaign whose twelve messages are due, and nothing queued to send
    campaign = expanded()
    take_queued(Queue.SEND)

    # When the dispatcher runs twice, each run's sends taken off the queue
    messaging_tasks.send_due()
    after_first = picture(campaign, simulator)
    queued_by_first = take_queued(Queue.SEND)
    messaging_tasks.send_due()
    queued_by_second = take_queued(Queue.SEND)

    # Then each run queues one send of the batch and changes nothing else
    assert picture(campaign, simulator) == after_first
    assert after_first["accepted"] == {}
    assert queued_by_first == [("messaging.send_batch", [campaign.dispatch_id])]
    assert queued_by_second == queued_by_first
    # and the two sends, run, send each message once
    for _, args in queued_by_first + queued_by_second:
        messaging_tasks.send_batch(*args)
    assert set(picture(campaign, simulator)["accepted"].values()) == {1}


def test_polling_and_processing_receipts_again_changes_nothing(simulator):
    campaign = sent()

    state = assert_second_run_changes_nothing(
        campaign, simulator, messaging_tasks.poll_receipts
    )
    assert any(log[3] == LogStatus.DELIVERED for log in state["logs"])

    assert_second_run_changes_nothing(
        campaign, simulator, messaging_tasks.process_receipts
    )


def test_finishing_and_completing_again_changes_nothing(simulator):
    simulator.set_success_rate(1.0)
    campaign = sent()
    messaging_tasks.poll_receipts()

    assert_second_run_changes_nothing(
        campaign, simulator, messaging_tasks.finish_dispatch, campaign.dispatch_id
    )
    state = assert_second_run_changes_nothing(
        campaign, simulator, campaign_tasks.mark_completed, campaign.dispatch_id
    )
    assert state["campaign"][0] == Campaign.Status.COMPLETED
    status, audience, skipped, pending, sent_, delivered, failed = state["dispatch"][0][
        :7
    ]
    assert (status, audience, skipped, pending, sent_) == ("completed", 13, 1, 0, 12)
    assert delivered + failed == 12


def test_launching_scheduled_campaigns_again_changes_nothing(simulator):
    organization = OrganizationFactory()
    LeadFactory.create_batch(3, organization=organization)
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = CampaignFactory(
        organization=organization,
        segment=segment,
        status=Campaign.Status.SCHEDULED,
        scheduled_at=timezone.now() - timedelta(minutes=1),
    )

    state = assert_second_run_changes_nothing(
        campaign, simulator, campaign_tasks.launch_scheduled
    )

    assert state["campaign"][0] == Campaign.Status.RUNNING


def test_sweeping_again_changes_nothing(simulator):
    campaign = expanded()
    claimed = CommunicationLog.objects.filter(
        dispatch_id=campaign.dispatch_id, status=LogStatus.PENDING
    )
    claimed.update(
        status=LogStatus.PROCESSING,
        attempts=1,
        next_attempt_at=None,
        last_attempt_at=timezone.now() - timedelta(hours=1),
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    CampaignChunk.objects.filter(campaign=campaign).update(
        status=CampaignChunk.Status.QUEUED,
        enqueued_at=timezone.now() - timedelta(hours=1),
    )

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        state = assert_second_run_changes_nothing(
            campaign, simulator, messaging_tasks.sweep
        )
        assert_second_run_changes_nothing(campaign, simulator, campaign_tasks.sweep)

    assert LogStatus.PROCESSING not in {log[3] for log in state["logs"]}
