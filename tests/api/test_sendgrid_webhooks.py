"""SendGrid's Signed Event Webhook at /api/webhooks/sendgrid/events, and a campaign
email sent through the real adapter to the fake SendGrid.

Events become receipts (delivered, failed) and suppressions (hard bounce,
complaint, unsubscribe). A forged, tampered or replayed (old timestamp) webhook is
a 403 that changes nothing.
"""

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.services import lifecycle
from crm.models import Channel, Suppression
from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs
from tests.support.sendgrid import adapter_for
from vendors.base import OutboundMessage
from vendors.registry import reset_adapters
from vendors.sendgrid_fake import SendGridFake, SentEmail

pytestmark = pytest.mark.django_db
EVENTS_URL = "/api/webhooks/sendgrid/events"


@pytest.fixture
def fake(settings) -> Iterator[SendGridFake]:
    """The fake, and the server configured with its API URL, key and webhook key."""
    fake = SendGridFake().start()
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_URL": fake.api_url,
    }
    settings.DEFAULT_FROM_EMAIL = "news@crm.example.com"
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = fake.public_key
    reset_adapters()
    yield fake
    reset_adapters()
    fake.stop()


def send(fake, log: CommunicationLog) -> SentEmail:
    adapter_for(fake).send_batch(
        [OutboundMessage(log.send_id, "email", log.recipient, "Hello", "Sale")]
    )
    return fake.sent[-1]


@pytest.fixture
def sent(fake, org) -> tuple[SentEmail, CommunicationLog]:
    """A message the fake accepted, and our log of it as sent."""
    dispatch = DispatchFactory(organization=org, pending=0, sent=1, audience=1)
    log = CommunicationLogFactory(
        dispatch=dispatch,
        channel=Channel.EMAIL,
        recipient="Reader@Example.com",
        status=LogStatus.SENT,
        vendor="sendgrid",
        lead__organization=org,
    )
    log.vendor_ref = log.send_id
    log.save(update_fields=["vendor_ref"])
    return send(fake, log), log


def post(body: bytes, headers: dict[str, str]):
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers.items()
        if name != "Content-Type"
    }
    return APIClient().post(EVENTS_URL, body, content_type="application/json", **extra)


def post_events(fake, events: list[dict], **options):
    return post(*fake.signed(events, **options))


def assert_unchanged(log: CommunicationLog) -> None:
    assert not DeliveryReceipt.objects.exists()
    assert not Suppression.objects.exists()
    log.refresh_from_db()
    assert log.status == LogStatus.SENT


def test_a_signed_delivered_event_makes_the_sent_log_delivered(fake, sent):
    message, log = sent

    response = post_events(fake, [fake.event(message, "delivered")])
    receipts_process()

    assert response.status_code == 202
    assert response.json() == {"received": 1, "new": 1, "suppressed": 0}
    log.refresh_from_db()
    assert log.status == LogStatus.DELIVERED
    assert Dispatch.objects.get(pk=log.dispatch_id).delivered == 1


def test_a_hard_bounce_fails_the_message_and_suppresses_the_address(fake, sent):
    message, log = sent

    response = post_events(fake, [fake.event(message, "bounce")])
    receipts_process()

    assert response.json()["suppressed"] == 1
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "bounce")
    [suppression] = Suppression.objects.all()
    assert (
        suppression.organization_id,
        suppression.channel,
        suppression.address,
        suppression.reason,
    ) == (log.lead.organization_id, Channel.EMAIL, "reader@example.com", "hard_bounce")


def test_a_dropped_message_fails_without_suppressing(fake, sent):
    message, log = sent

    post_events(fake, [fake.event(message, "dropped", reason="Invalid")])
    receipts_process()

    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "dropped_invalid")
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("spamreport", "complaint"), ("unsubscribe", "unsubscribe_link")],
)
def test_a_complaint_or_unsubscribe_after_delivery_suppresses_the_address(
    fake, sent, kind, reason
):
    message, log = sent
    post_events(fake, [fake.event(message, "delivered")])

    response = post_events(fake, [fake.event(message, kind)])
    receipts_process()

    assert response.json()["suppressed"] == 1
    log.refresh_from_db()
    assert log.status == LogStatus.DELIVERED
    assert Suppression.objects.get().reason == reason


def test_a_deferred_event_leaves_the_message_sent(fake, sent):
    message, log = sent

    response = post_events(fake, [fake.event(message, "deferred")])
    receipts_process()

    assert response.json() == {"received": 0, "new": 0, "suppressed": 0}
    assert_unchanged(log)


def test_the_same_bounce_posted_twice_suppresses_once_and_fails_once(fake, sent):
    message, log = sent
    bounce = fake.event(message, "bounce")

    answers = [post_events(fake, [bounce]) for _ in range(2)]
    receipts_process()

    assert [answer.status_code for answer in answers] == [202, 202]
    assert Suppression.objects.count() == 1
    assert Dispatch.objects.get(pk=log.dispatch_id).failed == 1


def test_a_forged_webhook_is_a_403_and_changes_nothing(fake, sent):
    message, log = sent
    forger = SendGridFake()

    response = post(*forger.signed([fake.event(message, "bounce")]))

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_tampered_webhook_is_a_403_and_changes_nothing(fake, sent):
    message, log = sent
    body, headers = fake.signed([fake.event(message, "delivered")])

    response = post(body.replace(b'"delivered"', b'"bounce"'), headers)

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_replayed_webhook_with_an_old_timestamp_is_a_403(fake, sent):
    message, log = sent
    an_hour_ago = int(time.time()) - 3600

    response = post_events(fake, [fake.event(message, "bounce")], timestamp=an_hour_ago)

    assert response.status_code == 403
    assert_unchanged(log)


def test_an_unsigned_webhook_is_a_403(fake, sent):
    message, log = sent
    body, _ = fake.signed([fake.event(message, "bounce")])

    response = post(body, {})

    assert response.status_code == 403
    assert_unchanged(log)


def test_without_a_verification_key_no_webhook_is_accepted(fake, sent, settings):
    message, log = sent
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = ""
    reset_adapters()

    response = post_events(fake, [fake.event(message, "delivered")])

    assert response.status_code == 403
    assert_unchanged(log)


def test_a_signed_body_that_is_not_events_is_a_400(fake):
    response = post(*fake.signed({"event": "delivered"}))  # type: ignore[arg-type]

    assert response.status_code == 400


def test_an_event_before_the_send_is_recorded_applies_once_it_is(fake, org):
    # given a message the vendor accepted, whose log is still being sent
    dispatch = DispatchFactory(organization=org, pending=0, sent=1, audience=1)
    log = CommunicationLogFactory(
        dispatch=dispatch,
        channel=Channel.EMAIL,
        recipient="early@example.com",
        status=LogStatus.PROCESSING,
        lead__organization=org,
    )
    message = send(fake, log)

    # when its bounce arrives before the send's answer is recorded, then it is
    response = post_events(fake, [fake.event(message, "bounce")])
    receipts_process()
    CommunicationLog.objects.filter(pk=log.pk).update(
        status=LogStatus.SENT, vendor="sendgrid", vendor_ref=log.send_id
    )
    receipts_process()

    # then the address is suppressed at once and the log fails once recorded
    assert response.json()["suppressed"] == 1
    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "bounce")


def test_a_campaign_email_goes_in_batched_requests_and_events_finish_it(fake, settings):
    # given an email campaign of 120 leads in chunks of 50, SendGrid the vendor
    settings.VENDOR_DEFAULT = "sendgrid"
    campaign = launched_and_chunked(
        120, channel=Channel.EMAIL, subject="Our sale", chunk_size=50
    )
    expand_all(campaign)

    # when the send path sends, and SendGrid posts delivered, bounced and
    # complained events
    outcome = logs_send_due(dispatch_id=campaign.dispatch_id)
    kinds = ["delivered"] * 100 + ["bounce"] * 20
    events = [fake.event(m, kind) for m, kind in zip(fake.sent, kinds, strict=True)]
    events += [fake.event(fake.sent[0], "spamreport")]
    answers = [
        post_events(fake, events[start : start + 50])
        for start in range(0, len(events), 50)
    ]
    receipts_process()
    lifecycle.campaign_mark_completed(dispatch_id=campaign.dispatch_id)

    # then each message went once, all in one request, with its own unsubscribe
    # link; the events moved every log, the bounced and complained addresses are
    # suppressed, and the campaign completed
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    assert outcome.sent == 120
    assert fake.accepted_requests == [120]
    assert fake.requests_by_send_id == {log.send_id: 1 for log in logs}
    assert fake.duplicate_sends == 0
    assert {answer.status_code for answer in answers} == {202}
    statuses = sorted(logs.values_list("status", flat=True))
    assert statuses == [LogStatus.DELIVERED] * 100 + [LogStatus.FAILED] * 20
    assert Suppression.objects.filter(reason="hard_bounce").count() == 20
    assert Suppression.objects.filter(reason="complaint").count() == 1
    assert {s.subject for s in fake.sent} == {"Our sale"}
    assert all("List-Unsubscribe" in s.headers for s in fake.sent)
    assert len({s.headers["List-Unsubscribe"] for s in fake.sent}) == 120
    assert_counters_match_logs(Dispatch.objects.get(pk=campaign.dispatch_id))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


awkward_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 300, "send-1"]),
)
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), awkward_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=6,
)
any_event = st.fixed_dictionaries(
    {
        "event": st.one_of(
            st.sampled_from(
                ["delivered", "bounce", "dropped", "spamreport", "unsubscribe"]
            ),
            awkward_text,
        ),
        "send_id": st.one_of(awkward_text, any_json),
    },
    optional={
        "timestamp": st.one_of(
            st.integers(), st.floats(), awkward_text, st.just(10**20)
        ),
        "type": st.one_of(st.sampled_from(["bounce", "blocked"]), any_json),
        "reason": any_json,
        "sg_event_id": any_json,
        "email": awkward_text,
        "category": any_json,
    },
)


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(any_event, max_size=3))
def test_any_signed_events_get_a_2xx_or_a_4xx(fake, events):
    response = post_events(fake, events)

    assert response.status_code in (202, 400)
