"""A campaign pauses itself when too many of its recent attempts fail, says why in
the admin and the API, and a resume clears it; automations never pause."""

import itertools

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automations.models import AutomationDispatch
from automations.services.outbox import automation_dispatch_id, lead_message
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.services import expansion, lifecycle
from config.celery import app as celery_app
from crm.models import Channel, Membership
from messaging.models import Dispatch
from messaging.services.outbound import messages_queue
from messaging.services.sending import logs_send_due
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs
from tests.support.scripted_vendor import ScriptedVendor, accept, fail
from vendors.base import VendorUnavailable

pytestmark = pytest.mark.django_db

WINDOW = 10


@pytest.fixture(autouse=True)
def _small_window(settings):
    settings.MESSAGING_AUTO_PAUSE_WINDOW = WINDOW
    settings.MESSAGING_AUTO_PAUSE_FAILURE_RATE = 0.2


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent by name instead of to the broker, run by the test as it likes."""
    sent = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args=(), **_: sent.append((name, args))
    )
    return sent


def failing_one_in(n: int, code: str = "spam") -> ScriptedVendor:
    """A vendor refusing (permanently) every n-th message it is handed."""
    counter = itertools.count(1)
    refuse = fail(code, retryable=False)
    return ScriptedVendor(
        lambda message: refuse(message) if next(counter) % n == 0 else accept(message)
    )


def running(leads: int = 30, channel: str = Channel.SMS) -> Campaign:
    campaign = launched_and_chunked(leads, channel=channel, subject="S", chunk_size=10)
    expand_all(campaign)
    return campaign


def send(campaign: Campaign, vendor, *, limit: int = WINDOW, batches: int = 1):
    for _ in range(batches):
        logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor, limit=limit)


def run_pause_tasks(sent_tasks) -> None:
    for name, args in sent_tasks:
        if name == lifecycle.PAUSE_TASK:
            tasks.mark_paused(*args)


def test_at_the_threshold_the_campaign_pauses_with_the_reason(
    sent_tasks, django_capture_on_commit_callbacks
):
    # Given a running campaign whose vendor refuses one message in five
    campaign = running(30)

    # When a full window of attempts (10) has gone out, 2 of them refused
    with django_capture_on_commit_callbacks(execute=True):
        send(campaign, failing_one_in(5))
    run_pause_tasks(sent_tasks)

    # Then its dispatch and the campaign are paused, saying why
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.dispatch.status == Dispatch.Status.PAUSED
    assert campaign.dispatch.paused_reason == (
        "Paused automatically: 20% of the last 10 attempts failed (codes: spam 2). "
        "Resume once the cause is fixed."
    )
    # and nothing more is sent, nor expanded, until a resume
    vendor = ScriptedVendor()
    send(campaign, vendor)
    assert vendor.calls == []
    assert_counters_match_logs(campaign.dispatch)


def test_below_the_threshold_or_before_the_window_is_full_it_runs_on(sent_tasks):
    # Given two running campaigns
    few_failures, early = running(30), running(30)

    # When one sends 20 messages, 1 in 10 refused; the other 5, every one refused
    send(few_failures, failing_one_in(10), batches=2)
    send(early, ScriptedVendor(fail("spam", retryable=False)), limit=5)

    # Then neither pauses: 10% is under 20%, and 5 attempts are not a window
    for campaign in (few_failures, early):
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.RUNNING
        assert campaign.dispatch.status == Dispatch.Status.ACTIVE
        assert campaign.dispatch.paused_reason == ""
    assert early.dispatch.recent_attempts == "11111"
    assert lifecycle.PAUSE_TASK not in [name for name, _ in sent_tasks]


def test_a_batch_larger_than_the_window_is_judged_on_its_last_attempts(sent_tasks):
    # Given a running campaign whose vendor refuses one message in ten
    campaign = running(30)

    # When one batch of 30 goes out (its 10th, 20th and 30th refused)
    send(campaign, failing_one_in(10), limit=30)

    # Then the window is the batch's last 10 attempts, 1 refused: it runs on
    campaign.refresh_from_db()
    assert campaign.dispatch.recent_attempts == "0000000001"
    assert campaign.dispatch.status == Dispatch.Status.ACTIVE


def test_a_vendor_outage_is_retried_and_does_not_pause_the_campaign(sent_tasks):
    # Given a running campaign
    campaign = running(30)

    # When the vendor is down for two full windows of attempts
    send(
        campaign,
        ScriptedVendor(raises=VendorUnavailable("503 from the vendor")),
        batches=2,
    )

    # Then its messages wait for their retries, and the campaign runs on
    campaign.refresh_from_db()
    assert campaign.dispatch.status == Dispatch.Status.ACTIVE
    assert campaign.dispatch.recent_attempts == ""
    assert campaign.dispatch.pending == 30
    assert lifecycle.PAUSE_TASK not in [name for name, _ in sent_tasks]


def test_the_reason_shows_in_the_api_and_the_admin(sent_tasks, client):
    # Given a campaign that paused itself
    campaign = running(30)
    send(campaign, failing_one_in(2, code="invalid_number"))
    lifecycle.campaign_mark_paused(dispatch_id=campaign.dispatch_id)
    member = MembershipFactory(
        organization=campaign.organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.MARKETER,
    )
    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=member.user)}"
    )
    client.force_login(member.user)

    # When a marketer looks at it in the API and in the admin
    data = api.get(f"/api/campaigns/{campaign.pk}").data
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    # Then both say it is paused and why
    expected = "50% of the last 10 attempts failed (codes: invalid_number 5)"
    assert data["status"] == "paused"
    assert expected in data["paused_reason"]
    assert expected in page.content.decode()


def test_resume_clears_the_reason_and_the_window(sent_tasks):
    # Given a campaign that paused itself
    campaign = running(30)
    send(campaign, failing_one_in(2))
    lifecycle.campaign_mark_paused(dispatch_id=campaign.dispatch_id)

    # When it is resumed and a window of good attempts goes out
    lifecycle.campaign_resume(campaign_id=campaign.pk)
    dispatch = Dispatch.objects.get(pk=campaign.dispatch_id)
    cleared = (dispatch.status, dispatch.paused_reason, dispatch.recent_attempts)
    send(campaign, ScriptedVendor())

    # Then it ran on from a clean slate, and keeps running
    assert cleared == (Dispatch.Status.ACTIVE, "", "")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.dispatch.recent_attempts == "0" * WINDOW
    assert campaign.dispatch.sent == 15


def test_a_lost_pause_task_is_made_up_by_the_sweeper(sent_tasks):
    # Given a campaign whose dispatch paused itself, the campaign never told
    campaign = running(30)
    send(campaign, failing_one_in(2))

    # When the completion sweeper runs
    tasks.sweep_completion()

    # Then the campaign shows paused too
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_chunks_wait_while_the_dispatch_is_paused(sent_tasks):
    # Given a campaign with chunks not expanded yet, whose dispatch paused itself
    campaign = launched_and_chunked(30, chunk_size=10)
    (first, *rest) = campaign.chunks.order_by("index")
    expansion.chunk_expand(job_id=first.job_id)
    send(campaign, failing_one_in(2))

    # When another chunk's task runs before the campaign is told
    result = expansion.chunk_expand(job_id=rest[0].job_id)

    # Then it expands nothing and stays queued for the resume
    assert result is None
    rest[0].refresh_from_db()
    assert rest[0].status == "queued"


def test_an_automation_never_pauses(organization, sent_tasks):
    # Given the organization's reminders dispatch and 20 reminders
    leads = LeadFactory.create_batch(20, organization=organization)
    dispatch_id = automation_dispatch_id(
        organization_id=organization.pk,
        kind=AutomationDispatch.Kind.REMINDERS,
        channel=Channel.SMS,
    )
    messages_queue(
        dispatch_id=dispatch_id,
        channel=Channel.SMS,
        messages=[
            lead_message(
                lead=lead, channel=Channel.SMS, dedupe_key=f"r{lead.pk}", body="Soon"
            )
            for lead in leads
        ],
    )

    # When every one of them is refused
    logs_send_due(
        dispatch_id=dispatch_id, adapter=ScriptedVendor(fail("spam", retryable=False))
    )

    # Then the dispatch is still active and keeps no window
    dispatch = Dispatch.objects.get(pk=dispatch_id)
    assert (dispatch.status, dispatch.failed, dispatch.recent_attempts) == (
        Dispatch.Status.ACTIVE,
        20,
        "",
    )
