"""An email campaign through real workers and the real SendGrid adapter to the fake
SendGrid (its first two answers 503s), finished by its signed event webhooks."""

import pytest
from django.db.models import Count
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_launch
from crm.models import Channel, Suppression
from messaging.models import CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.workers import beat_duties, wait_for
from vendors.registry import reset_adapters
from vendors.sendgrid_fake import SendGridFake

pytestmark = pytest.mark.integration
LEADS = 400
BOUNCED = 10


@pytest.fixture
def fake(settings):
    fake = SendGridFake(server_errors_next=2).start()
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_URL": fake.api_url,
    }
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = fake.public_key
    reset_adapters()
    yield fake
    reset_adapters()
    fake.stop()


def post_events(fake: SendGridFake, events: list[dict]) -> int:
    body, headers = fake.signed(events)
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers.items()
        if name != "Content-Type"
    }
    return (
        APIClient()
        .post(
            "/api/webhooks/sendgrid/events",
            body,
            content_type="application/json",
            **extra,
        )
        .status_code
    )


def test_an_email_campaign_reaches_sendgrid_once_a_message_and_events_finish_it(
    start_workers, fake
):
    # given an email campaign of 400 leads and two workers sending through SendGrid
    organization = OrganizationFactory()
    LeadFactory.create_batch(LEADS, organization=organization)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 0}
    )
    campaign = CampaignFactory(
        organization=organization,
        segment=segment,
        channel=Channel.EMAIL,
        subject="Our sale",
    )
    start_workers(
        2,
        VENDOR_DEFAULT="sendgrid",
        SENDGRID_API_KEY=fake.api_key,
        SENDGRID_API_URL=fake.api_url,
        DEFAULT_FROM_EMAIL="news@crm.example.com",
        MESSAGING_RETRY_BASE_SECONDS="0.3",
        # Two 503s refuse every message of the first attempts: the outage this
        # test retries through, not the refusals auto-pause is for.
        MESSAGING_AUTO_PAUSE_FAILURE_RATE="1.1",
    )

    # when it is launched and sent, and SendGrid reports each message delivered
    # but ten bounced
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    wait_for(
        lambda: (
            logs.count() == LEADS
            and not logs.filter(
                status__in=[LogStatus.PENDING, LogStatus.PROCESSING]
            ).exists()
        ),
        timeout=180,
        tick=beat_duties,
    )
    kinds = ["bounce"] * BOUNCED + ["delivered"] * (len(fake.sent) - BOUNCED)
    events = [fake.event(s, kind) for s, kind in zip(fake.sent, kinds, strict=True)]
    answers = {
        post_events(fake, events[n : n + 100]) for n in range(0, len(events), 100)
    }
    wait_for(
        lambda: (
            Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
        ),
        timeout=120,
        tick=beat_duties,
    )

    # then no message went twice, requests carried many messages each, every sent
    # message got its event, bounces are suppressed, and the counters reconcile
    assert answers == {202}
    assert fake.duplicate_sends == 0
    assert fake.requests_by_send_id.total() > len(fake.sent), "no 503 was retried"
    assert len({s.send_id for s in fake.sent}) == len(fake.sent)
    assert len(fake.accepted_requests) < LEADS / 10
    per_status = dict(logs.values_list("status").annotate(n=Count("id")))
    assert per_status.get(LogStatus.FAILED, 0) >= BOUNCED
    assert per_status[LogStatus.DELIVERED] == len(fake.sent) - BOUNCED
    assert set(per_status) <= {LogStatus.DELIVERED, LogStatus.FAILED}
    assert Suppression.objects.filter(reason="hard_bounce").count() == BOUNCED
    assert (
        dispatch_reconcile(dispatch_id=campaign.dispatch_id, repair=False).differences
        == {}
    )
