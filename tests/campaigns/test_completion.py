"""No campaign waits for ever: every one with nothing left to do ends completed,
whether or not the message that would have said so arrives."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import tasks
from campaigns.models import Campaign
from campaigns.services import expansion, lifecycle
from config.celery import app as celery_app
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.receipts import receipts_process, receipts_store
from messaging.services.sending import send_due
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.campaigns import EVERYONE, expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs
from tests.support.scripted_vendor import ScriptedVendor, accept
from vendors.base import Receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent by name (a dispatch's finish task) instead of to the broker."""
    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=(), **_: sent.append((name, args))
    )
    return sent


def launched(leads: int = 30, **lead_fields) -> Campaign:
    organization = OrganizationFactory()
    LeadFactory.create_batch(leads, organization=organization, **lead_fields)
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = CampaignFactory(organization=organization, segment=segment)
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def delivered(campaign: Campaign) -> None:
    """Every sent message of the campaign gets its receipt."""
    logs = CommunicationLog.objects.filter(
        dispatch=campaign.dispatch_id, status=LogStatus.SENT
    )
    receipts_store(
        vendor="scripted",
        receipts=[
            Receipt(log.vendor_ref, "DELIVERED", None, log.sent_at, {}) for log in logs
        ],
    )
    receipts_process()


@pytest.mark.parametrize(
    "lead_fields",
    [{"phones": [], "phone": ""}, {"sms_opt_out": True}],
    ids=["no_phone", "opted_out"],
)
def test_campaign_with_every_lead_skipped_completes(
    lead_fields, sent_tasks, django_capture_on_commit_callbacks
):
    # given an SMS campaign whose 30 leads cannot be sent to
    campaign = launched(30, **lead_fields)
    (chunk,) = campaign.chunks.all()

    # when its chunk is expanded (every message skipped)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.expand_chunk(chunk.as_message())

    # then its dispatch is complete and the campaign is told so
    campaign.dispatch.refresh_from_db()
    assert campaign.dispatch.skipped == 30
    assert campaign.dispatch.status == Dispatch.Status.COMPLETED
    assert (lifecycle.FINISH_TASK, [campaign.dispatch_id]) in sent_tasks


def test_the_sweeper_completes_a_campaign_whose_completion_message_was_lost():
    # given a campaign whose dispatch completed, the campaign's task lost
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    delivered(campaign)
    campaign.refresh_from_db()
    assert campaign.dispatch.status == Dispatch.Status.COMPLETED
    assert campaign.status == Campaign.Status.RUNNING

    # when the completion sweeper runs
    tasks.sweep_completion()

    # then the campaign is completed
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None


def test_the_sweeper_finishes_a_dispatch_whose_finish_check_was_lost():
    # given a campaign with every message delivered but no finish check run (its
    # broker message lost)
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    delivered(campaign)
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(
        status=Dispatch.Status.ACTIVE, finished_at=None
    )

    # when the completion sweeper runs
    tasks.sweep_completion()

    # then dispatch and campaign are completed
    campaign.refresh_from_db()
    assert campaign.dispatch.status == Dispatch.Status.COMPLETED
    assert campaign.status == Campaign.Status.COMPLETED


def test_a_campaign_resumed_with_nothing_left_to_send_completes():
    # given a campaign paused with its messages sent, whose receipts then came
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    lifecycle.campaign_pause(campaign_id=campaign.pk)
    delivered(campaign)

    # when it is resumed, and the sweeper runs
    lifecycle.campaign_resume(campaign_id=campaign.pk)
    tasks.sweep_completion()

    # then it is completed
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_a_paused_campaign_stays_paused_while_its_receipts_come():
    # given a paused campaign whose receipts all came
    campaign = launched_and_chunked(2)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    lifecycle.campaign_pause(campaign_id=campaign.pk)
    delivered(campaign)

    # when the sweeper runs
    tasks.sweep_completion()

    # then it waits for the marketer's resume
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_a_campaign_whose_receipts_never_come_completes_after_the_timeout(settings):
    # given a campaign whose messages were sent 73 hours ago, without receipts
    settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS = 72 * 3600
    campaign = launched_and_chunked(3)
    expand_all(campaign)
    send_due(dispatch_id=campaign.dispatch_id, adapter=ScriptedVendor(accept))
    long_ago = timezone.now() - timedelta(hours=73)
    CommunicationLog.objects.filter(dispatch=campaign.dispatch_id).update(
        sent_at=long_ago
    )
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(created_at=long_ago)

    # when the sweeper runs
    tasks.sweep_completion()

    # then the messages are no_receipt and the campaign completed, counters exact
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.dispatch.no_receipt == 3
    assert_counters_match_logs(campaign.dispatch)


def test_the_sweeper_cancels_what_a_cancelled_campaign_left_pending():
    # given a cancelled campaign with a message pending (a retry recorded as it
    # was cancelled)
    campaign = launched_and_chunked(2)
    expand_all(campaign)
    lifecycle.campaign_cancel(campaign_id=campaign.pk)
    log = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id).first()
    CommunicationLog.objects.filter(pk=log.pk).update(
        status=LogStatus.PENDING, next_attempt_at=timezone.now()
    )
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(pending=1, cancelled=1)

    # when the sweeper runs, twice
    tasks.sweep_completion()
    tasks.sweep_completion()

    # then nothing in it is pending, and its counters match
    log.refresh_from_db()
    assert log.status == LogStatus.CANCELLED
    assert_counters_match_logs(campaign.dispatch)


def test_the_completion_sweeper_is_scheduled_every_minute():
    # given the schedules installed (as the migration does, or setup_schedules)
    call_command("setup_schedules", stdout=io.StringIO())

    # when beat reads its schedules
    task = PeriodicTask.objects.get(task="campaigns.sweep_completion")

    # then the completion sweeper runs every 60 s
    assert (task.interval.every, task.interval.period) == (60, "seconds")
    assert task.enabled
