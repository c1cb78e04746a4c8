"""The SendGrid adapter (through anymail) against a wire-protocol fake of SendGrid."""

import json
import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.sendgrid import FROM_EMAIL, adapter_for
from vendors.base import (
    InvalidPayload,
    OutboundMessage,
    SuppressionNotice,
    VendorUnavailable,
)
from vendors.registry import get_adapter, reset_adapters
from vendors.sendgrid import (
    CONNECTION_ERROR,
    INVALID_ADDRESS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SendGridAdapter,
)
from vendors.sendgrid_fake import SendGridFake


@pytest.fixture
def fake() -> Iterator[SendGridFake]:
    fake = SendGridFake().start()
    yield fake
    fake.stop()


def email(n: int, *, to: str | None = None, **fields) -> OutboundMessage:
    return OutboundMessage(
        send_id=f"send-{n}",
        channel="email",
        to=to or f"person{n}@example.com",
        subject=fields.pop("subject", f"Hello {n}"),
        body=fields.pop("body", f"Dear person {n}, our sale starts today."),
        **fields,
    )


def test_a_batch_is_one_request_with_each_message_rendered_in_its_own_personalization(
    fake,
):
    adapter = adapter_for(fake)
    messages = [email(n) for n in range(250)]

    results = adapter.send_batch(messages)

    assert fake.accepted_requests == [250]
    assert [r.send_id for r in results] == [m.send_id for m in messages]
    assert all(r.accepted and r.vendor_ref == r.send_id for r in results)
    by_send_id = {sent.send_id: sent for sent in fake.sent}
    assert {(m.send_id, m.to, m.subject, m.body) for m in messages} == {
        (s.send_id, s.to, s.subject, s.body) for s in by_send_id.values()
    }
    assert {sent.from_email for sent in fake.sent} == {FROM_EMAIL}
    assert fake.requests_by_send_id == {m.send_id: 1 for m in messages}
    assert fake.duplicate_sends == 0


def test_more_than_a_thousand_messages_go_in_requests_of_at_most_a_thousand(fake):
    adapter = adapter_for(fake)
    messages = [email(n) for n in range(2500)]

    results = adapter.send_batch(messages)

    assert fake.accepted_requests == [1000, 1000, 500]
    assert all(result.accepted for result in results)
    assert fake.duplicate_sends == 0


def test_two_messages_to_one_address_each_reach_it_with_their_own_text(fake):
    adapter = adapter_for(fake)
    messages = [
        email(1, to="shared@example.com", body="first"),
        email(2, to="Shared@example.com", body="second"),
        email(3),
    ]

    results = adapter.send_batch(messages)

    assert all(result.accepted for result in results)
    assert sorted(fake.accepted_requests) == [1, 2]
    assert {(s.send_id, s.body) for s in fake.sent if "hared" in s.to} == {
        ("send-1", "first"),
        ("send-2", "second"),
    }


def test_a_body_beyond_the_substitution_limit_goes_alone_and_whole(fake):
    adapter = adapter_for(fake)
    long_body = "A long newsletter. " * 1000
    messages = [email(1), email(2, body=long_body), email(3)]

    results = adapter.send_batch(messages)

    assert all(result.accepted for result in results)
    assert sorted(fake.accepted_requests) == [1, 2]
    [long_one] = [sent for sent in fake.sent if sent.send_id == "send-2"]
    assert long_one.body == long_body


def test_a_message_headers_travel_with_it_alone(fake):
    adapter = adapter_for(fake)
    unsubscribe = {
        "List-Unsubscribe": "<https://crm.example.com/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    adapter.send_batch([email(1, headers=tuple(unsubscribe.items())), email(2)])

    by_send_id = {sent.send_id: sent for sent in fake.sent}
    assert by_send_id["send-1"].headers == unsubscribe
    assert by_send_id["send-2"].headers == {}


def test_an_invalid_address_fails_alone_for_good(fake):
    adapter = adapter_for(fake)

    results = adapter.send_batch([email(1, to="not an address"), email(2)])

    assert [(r.accepted, r.error_code, r.retryable) for r in results] == [
        (False, INVALID_ADDRESS, False),
        (True, None, False),
    ]
    assert [sent.send_id for sent in fake.sent] == ["send-2"]


def test_a_from_address_that_is_none_is_refused_when_the_adapter_is_built(fake):
    with pytest.raises(ImproperlyConfigured):
        adapter_for(fake, from_email="not an address")


def test_a_refused_request_fails_each_of_its_messages_with_the_code(fake):
    adapter = adapter_for(fake, api_key="SG.wrong")

    results = adapter.send_batch([email(1), email(2)])

    assert [(r.accepted, r.error_code, r.retryable) for r in results] == [
        (False, "http_401", False),
        (False, "http_401", False),
    ]
    assert "authorization grant is invalid" in results[0].error_message
    assert fake.sent == []


def test_a_rate_limited_request_is_retried_later_never_dropped(fake):
    fake.rate_limit_per_second = 1
    adapter = adapter_for(fake)
    adapter.send_batch([email(1)])

    results = adapter.send_batch([email(2), email(3)])

    assert [(r.accepted, r.error_code, r.retryable) for r in results] == [
        (False, "http_429", True),
        (False, "http_429", True),
    ]


def test_a_server_error_makes_the_vendor_unavailable_for_the_batch(fake):
    fake.server_error_rate = 1.0
    adapter = adapter_for(fake)

    with pytest.raises(VendorUnavailable):
        adapter.send_batch([email(1), email(2)])


def test_an_unreachable_api_makes_the_vendor_unavailable_for_the_batch(fake):
    adapter = adapter_for(fake)
    fake.stop()

    with pytest.raises(VendorUnavailable):
        adapter.send_batch([email(1)])


def test_a_failed_request_after_an_accepted_one_retries_only_its_own_messages(
    fake,
):
    adapter = adapter_for(fake)
    messages = [email(n) for n in range(1001)]
    real_answer = fake._answer
    calls = []

    def second_fails(path, auth, raw):
        calls.append(path)
        if len(calls) == 2:
            return 503, {}, {"errors": [{"message": "Service Unavailable"}]}
        return real_answer(path, auth, raw)

    fake._answer = second_fails

    results = adapter.send_batch(messages)

    assert all(result.accepted for result in results[:1000])
    assert (results[1000].error_code, results[1000].retryable) == (
        CONNECTION_ERROR,
        True,
    )


def test_the_registry_builds_sendgrid_from_settings(settings, fake):
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_URL": fake.api_url,
    }
    settings.DEFAULT_FROM_EMAIL = "hello@crm.example.com"
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = fake.public_key
    reset_adapters()
    try:
        adapter = get_adapter("sendgrid")

        [result] = adapter.send_batch([email(1)])
    finally:
        reset_adapters()

    assert isinstance(adapter, SendGridAdapter)
    assert result.accepted
    assert fake.sent[0].from_email == "hello@crm.example.com"


# --- Signed event webhooks ------------------------------------------------------


def sent_and_events(fake, *kinds: str, **fields) -> tuple[list, bytes, dict]:
    adapter_for(fake).send_batch([email(1)])
    [sent] = fake.sent
    events = [fake.event(sent, kind, **fields) for kind in kinds]
    body, headers = fake.signed(events)
    return events, body, headers


def test_an_event_webhook_signed_by_sendgrid_is_verified(fake):
    _, body, headers = sent_and_events(fake, "delivered")

    assert adapter_for(fake).verify_signature(body=body, headers=headers)


def test_a_tampered_event_webhook_is_refused(fake):
    _, body, headers = sent_and_events(fake, "delivered")
    tampered = body.replace(b"delivered", b"bounce")

    assert not adapter_for(fake).verify_signature(body=tampered, headers=headers)


def test_an_event_webhook_signed_by_another_key_is_refused(fake):
    forger = SendGridFake()
    _, body, _ = sent_and_events(fake, "delivered")
    stamp = str(int(time.time()))
    forged = {SIGNATURE_HEADER: forger.sign(body, stamp), TIMESTAMP_HEADER: stamp}

    assert not adapter_for(fake).verify_signature(body=body, headers=forged)


def test_a_replayed_event_webhook_with_an_old_timestamp_is_refused(fake):
    adapter_for(fake).send_batch([email(1)])
    events = [fake.event(fake.sent[0], "delivered")]
    body, headers = fake.signed(events, timestamp=int(time.time()) - 301)

    assert not adapter_for(fake).verify_signature(body=body, headers=headers)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_an_event_webhook_without_its_signature_headers_is_refused(fake, missing):
    _, body, headers = sent_and_events(fake, "delivered")
    del headers[missing]

    assert not adapter_for(fake).verify_signature(body=body, headers=headers)


def test_no_event_webhook_is_trusted_until_a_key_is_configured(fake, settings):
    settings.SENDGRID_WEBHOOK_VERIFICATION_KEY = ""
    _, body, headers = sent_and_events(fake, "delivered")

    adapter = adapter_for(fake, verification_key="")

    assert not adapter.verify_signature(body=body, headers=headers)


def test_events_become_receipts_by_send_id(fake):
    _, body, headers = sent_and_events(
        fake, "processed", "deferred", "delivered", "open"
    )

    events = adapter_for(fake).parse_events(body=body, headers=headers)

    assert [(r.vendor_ref, r.status, r.error_code) for r in events.receipts] == [
        ("send-1", "DELIVERED", None)
    ]
    assert events.suppressions == []


def test_a_hard_bounce_fails_the_message_and_suppresses_the_address(fake):
    _, body, headers = sent_and_events(fake, "bounce")

    events = adapter_for(fake).parse_events(body=body, headers=headers)

    assert [(r.status, r.error_code) for r in events.receipts] == [
        ("UNDELIVERED", "bounce")
    ]
    assert events.suppressions == [SuppressionNotice("send-1", "hard_bounce")]


def test_a_blocked_message_fails_without_suppressing_the_address(fake):
    _, body, headers = sent_and_events(fake, "bounce", type="blocked")

    events = adapter_for(fake).parse_events(body=body, headers=headers)

    assert [(r.status, r.error_code) for r in events.receipts] == [
        ("UNDELIVERED", "blocked")
    ]
    assert events.suppressions == []


def test_a_dropped_message_fails_with_the_reason(fake):
    _, body, headers = sent_and_events(fake, "dropped")

    events = adapter_for(fake).parse_events(body=body, headers=headers)

    assert [(r.status, r.error_code) for r in events.receipts] == [
        ("UNDELIVERED", "dropped_bounced")
    ]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("spamreport", "complaint"), ("unsubscribe", "unsubscribe_link")],
)
def test_complaints_and_unsubscribes_suppress_the_address(fake, kind, reason):
    _, body, headers = sent_and_events(fake, kind)

    events = adapter_for(fake).parse_events(body=body, headers=headers)

    assert events.receipts == []
    assert events.suppressions == [SuppressionNotice("send-1", reason)]


def test_events_of_mail_we_did_not_send_are_skipped(fake):
    body = json.dumps(
        [{"email": "a@example.com", "event": "delivered", "timestamp": 1}]
    ).encode()

    events = adapter_for(fake).parse_events(body=body, headers={})

    assert events.receipts == [] and events.suppressions == []


@pytest.mark.parametrize("body", [b"not json", b'{"event": "x"}', b"[1, 2]"])
def test_a_body_that_is_not_a_list_of_events_is_invalid(fake, body):
    with pytest.raises(InvalidPayload):
        adapter_for(fake).parse_events(body=body, headers={})
