"""No campaign waits for ever: with real workers, awkward campaigns each reach a
final state with counters matching their messages.

The sweepers run on the test's beat tick (every 5 s, where beat runs them every
minute) and the workers' receipt timeout is 20 s (72 h by default).
"""

import pytest
from django.db.models import Count

from campaigns import tasks
from campaigns.models import Campaign, CampaignChunk
from campaigns.services import expansion, lifecycle
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from messaging.services.receipts import receipts_poll
from messaging.services.sending import send_due
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.broker import drop_queued_tasks, drop_simulator_receipts
from tests.support.campaigns import EVERYONE
from tests.support.workers import beat_duties, wait_for

pytestmark = pytest.mark.integration

RECEIPT_TIMEOUT_SECONDS = 20
NON_FINAL = [LogStatus.PENDING, LogStatus.PROCESSING, LogStatus.SENT]
FINISH_TASKS = {"messaging.finish_dispatch", lifecycle.FINISH_TASK}
FINISHED = {Campaign.Status.COMPLETED, Campaign.Status.CANCELLED}


def campaign_for(leads: int, *, chunk_size: int | None = None, **lead_fields):
    organization = OrganizationFactory()
    LeadFactory.create_batch(leads, organization=organization, **lead_fields)
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    return CampaignFactory(
        organization=organization, segment=segment, chunk_size=chunk_size
    )


def fresh(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_related("dispatch").get(pk=campaign.pk)


def logs_of(campaign: Campaign):
    return CommunicationLog.objects.filter(dispatch_id=fresh(campaign).dispatch_id)


def unfinished(campaigns: list[Campaign]) -> dict:
    """Each campaign not final, or with messages not final: its state."""
    found = {}
    for campaign in campaigns:
        campaign = fresh(campaign)
        left = dict(
            logs_of(campaign)
            .filter(status__in=NON_FINAL)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        if left or campaign.status not in FINISHED:
            found[campaign.name] = (campaign.status, campaign.dispatch.status, left)
    return found


def sent_here(campaign: Campaign) -> Dispatch:
    """Launch, chunk and expand (so send) the campaign in this process, no worker
    running: what it publishes waits in the broker."""
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)
    for chunk in CampaignChunk.objects.filter(campaign=campaign).order_by("index"):
        tasks.expand_chunk(chunk.as_message())
    return fresh(campaign).dispatch


def test_every_awkward_campaign_reaches_a_final_state(
    start_workers, clean_broker, settings
):
    settings.MESSAGING_RETRY_BASE_SECONDS = 0.3
    # given, before any worker runs: a campaign whose receipts the vendor loses
    no_receipt = campaign_for(40)
    dispatch = sent_here(no_receipt)
    assert drop_simulator_receipts(
        clean_broker, send_id_prefix=f"send-{no_receipt.pk}-"
    )
    # ... and one that finishes here, its finish and completion messages then lost
    lost_finish = campaign_for(20)
    dispatch = sent_here(lost_finish)
    wait_for(
        lambda: (
            Dispatch.objects.get(pk=dispatch.pk).status == Dispatch.Status.COMPLETED
        ),
        timeout=60,
        every=0.1,
        tick=lambda: (send_due(dispatch_id=dispatch.pk), receipts_poll()),
        tick_every=0.3,
    )
    assert drop_queued_tasks(
        clean_broker, queue="receipts", names=FINISH_TASKS, args=[dispatch.pk]
    )
    assert fresh(lost_finish).status == Campaign.Status.RUNNING

    # when workers run (a slow vendor: a second a call) with the rest launched
    start_workers(
        2,
        MESSAGING_RETRY_BASE_SECONDS="0.3",
        SIMULATOR_LATENCY_MS="1000",
        MESSAGING_RECEIPT_TIMEOUT_SECONDS=str(RECEIPT_TIMEOUT_SECONDS),
    )
    no_phone = campaign_for(30, phones=[], phone="")
    opted_out = campaign_for(30, sms_opt_out=True)
    for campaign in (no_phone, opted_out):
        lifecycle.campaign_launch(campaign_id=campaign.pk)

    # ... one paused once its first messages exist, and resumed once none is in
    # flight
    paused = campaign_for(600, chunk_size=10)
    lifecycle.campaign_launch(campaign_id=paused.pk)
    wait_for(lambda: logs_of(paused).exists(), timeout=120, every=0.05)
    lifecycle.campaign_pause(campaign_id=paused.pk)
    assert paused.chunks.filter(status=CampaignChunk.Status.QUEUED).exists()
    wait_for(
        lambda: not logs_of(paused).filter(status=LogStatus.PROCESSING).exists(),
        timeout=60,
    )
    lifecycle.campaign_resume(campaign_id=paused.pk)

    # ... and one cancelled while the vendor holds some of its messages
    cancelled = campaign_for(600, chunk_size=10)
    lifecycle.campaign_launch(campaign_id=cancelled.pk)
    wait_for(
        lambda: logs_of(cancelled).filter(status=LogStatus.PROCESSING).exists(),
        timeout=120,
        every=0.05,
    )
    lifecycle.campaign_cancel(campaign_id=cancelled.pk)

    # then every campaign and every message reaches a final state
    campaigns = [no_receipt, lost_finish, no_phone, opted_out, paused, cancelled]
    try:
        wait_for(
            lambda: not unfinished(campaigns),
            timeout=600,
            tick=beat_duties,
            tick_every=5,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; unfinished: {unfinished(campaigns)}") from None
    statuses = {campaign.pk: fresh(campaign).status for campaign in campaigns}
    assert statuses.pop(cancelled.pk) == Campaign.Status.CANCELLED
    assert set(statuses.values()) == {Campaign.Status.COMPLETED}
    # with counters matching the messages, one message per lead
    for campaign in campaigns:
        dispatch_id = fresh(campaign).dispatch_id
        assert (
            dispatch_reconcile(dispatch_id=dispatch_id, repair=False).differences == {}
        )
        per_lead = logs_of(campaign).values("lead_id").annotate(n=Count("id"))
        assert {row["n"] for row in per_lead} == {1}
    # and each ended as its awkwardness says
    assert fresh(no_receipt).dispatch.no_receipt > 0
    for campaign, reason in ((no_phone, "no_phone"), (opted_out, "opted_out")):
        assert set(logs_of(campaign).values_list("skip_reason", flat=True)) == {reason}
        assert fresh(campaign).dispatch.skipped == 30
    assert logs_of(cancelled).filter(status=LogStatus.CANCELLED).exists()
    assert logs_of(cancelled).exclude(sent_at=None).exists()
    assert (
        not logs_of(paused)
        .exclude(
            status__in=[LogStatus.DELIVERED, LogStatus.FAILED, LogStatus.NO_RECEIPT]
        )
        .exists()
    )
