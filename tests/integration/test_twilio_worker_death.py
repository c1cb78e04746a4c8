"""Workers killed while Twilio (the wire fake) answers slowly send nothing twice.

Twilio has no idempotency key: a request a dead worker made may have been taken.
The sweeper asks Twilio before anything is sent again, so every send id reaches
the fake once, and every message ends final or `unknown`.
"""

import pytest
from django.db.models import Count

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_launch
from messaging.models import FINAL_STATUSES, CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.integration.test_worker_death import kill_hard
from tests.support.workers import beat_duties, wait_for
from vendors.registry import reset_adapters
from vendors.twilio_fake import TwilioFake

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(settings, live_server):
    """The fake Twilio, calling back the live server, which is configured as its
    account (to check the callbacks' signatures)."""
    fake = TwilioFake(latency_ms=400, callback_delay_ms=200, undelivered_rate=0.1)
    fake.start()
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_STATUS_CALLBACK_URL = live_server.url
    reset_adapters()
    yield fake
    fake.stop()
    reset_adapters()


def test_workers_killed_mid_send_to_twilio_send_no_message_twice(
    start_workers, fake, live_server
):
    organization = OrganizationFactory()
    leads = LeadFactory.create_batch(80, organization=organization)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 0}
    )
    campaign = CampaignFactory(organization=organization, segment=segment)
    env = {
        "VENDOR_DEFAULT": "twilio",
        "TWILIO_API_BASE": fake.base_url,
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_STATUS_CALLBACK_URL": live_server.url,
        "TWILIO_RATE_PER_SECOND": "40",
        "TWILIO_MAX_IN_FLIGHT": "4",
        "MESSAGING_STUCK_AFTER_SECONDS": "3",
        "MESSAGING_RETRY_BASE_SECONDS": "1",
        "MESSAGING_RETRY_MAX_SECONDS": "2",
    }
    first = start_workers(2, **env)
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)

    def taken_but_unrecorded() -> set[str]:
        claimed = set(
            logs.filter(status=LogStatus.PROCESSING).values_list("send_id", flat=True)
        )
        return claimed & {message.send_id for message in list(fake.sent)}

    # Given workers killed while Twilio holds messages they have not recorded
    wait_for(lambda: len(taken_but_unrecorded()) >= 3, timeout=90, every=0.05)
    kill_hard(first)
    orphans = taken_but_unrecorded()
    assert orphans, "the workers recorded every message before they were killed"

    # When a new worker and the sweepers finish the campaign
    start_workers(1, **env)
    wait_for(
        lambda: (
            Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
        ),
        timeout=180,
        tick=beat_duties,
    )

    # Then no send id reached Twilio after it was taken, and Twilio's message for
    # each orphan is the one its log records
    assert fake.duplicate_sends == 0
    assert set(fake.requests_by_send_id.values()) == {1}
    sid_of = {message.send_id: message.sid for message in fake.sent}
    recorded = dict(
        logs.filter(send_id__in=orphans).values_list("send_id", "vendor_ref")
    )
    assert recorded == {send_id: sid_of[send_id] for send_id in orphans}
    # and every message is final (unknown counts: it is never sent again)
    per_lead = dict(logs.values_list("lead_id").annotate(n=Count("id")))
    assert per_lead == {lead.pk: 1 for lead in leads}
    assert not logs.exclude(status__in=FINAL_STATUSES).exists()
    assert logs.exclude(sent_at=None).count() == len(fake.sent)
    assert (
        dispatch_reconcile(dispatch_id=campaign.dispatch_id, repair=False).differences
        == {}
    )
