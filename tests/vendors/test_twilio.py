"""The Twilio adapter against a wire-protocol fake of Twilio's Messages API."""

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import redis

from tests.support.simulator import TEST_REDIS_URL
from tests.support.twilio import adapter_for
from tests.support.workers import wait_for
from vendors.base import IN_DOUBT, InFlightMessage, OutboundMessage, VendorUnavailable
from vendors.rate_limit import LocalRateLimiter, RedisRateLimiter, get_rate_limiter
from vendors.registry import get_adapter, reset_adapters
from vendors.twilio import (
    CONNECTION_ERROR,
    OPTED_OUT,
    RATE_LIMIT_UNAVAILABLE,
    TwilioAdapter,
    twilio_signature,
)
from vendors.twilio_fake import TwilioFake


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    fake = TwilioFake().start()
    yield fake
    fake.stop()


def sms(send_id: str, to: str = "+12025550100") -> OutboundMessage:
    return OutboundMessage(send_id=send_id, channel="sms", to=to, body="Hi there")


def test_a_batch_is_one_request_per_message_with_results_in_order(fake):
    adapter = adapter_for(fake)
    messages = [sms(f"send-{n}", to=f"+120255501{n:02d}") for n in range(20)]

    results = adapter.send_batch(messages)

    assert [result.send_id for result in results] == [m.send_id for m in messages]
    assert all(result.accepted for result in results)
    assert all(result.vendor_ref.startswith("SM") for result in results)
    assert len({result.vendor_ref for result in results}) == 20
    assert fake.requests_by_send_id == {m.send_id: 1 for m in messages}
    by_ref = {message.sid: message for message in fake.sent}
    assert [by_ref[r.vendor_ref].to for r in results] == [m.to for m in messages]


def test_a_rate_limited_account_gets_retryable_results_never_a_drop(fake):
    fake.rate_limit_per_second = 2
    adapter = adapter_for(fake, max_in_flight=4)
    messages = [sms(f"send-{n}") for n in range(12)]

    results = adapter.send_batch(messages)

    accepted = [result for result in results if result.accepted]
    limited = [result for result in results if not result.accepted]
    assert len(accepted) == len(fake.sent) >= 1
    assert limited
    assert {(r.error_code, r.retryable) for r in limited} == {("20429", True)}
    assert len(results) == 12
    assert fake.requests_by_send_id == {m.send_id: 1 for m in messages}


def test_an_invalid_number_is_a_permanent_failure_with_its_code(fake):
    adapter = adapter_for(fake)

    [result] = adapter.send_batch([sms("send-1", to="not-a-number")])

    assert not result.accepted
    assert (result.error_code, result.retryable) == ("21211", False)
    assert result.vendor_ref is None


def test_a_number_that_replied_stop_is_a_permanent_opted_out_failure(fake):
    fake.opted_out.add("+12025550100")
    adapter = adapter_for(fake)

    [result] = adapter.send_batch([sms("send-1", to="+12025550100")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        OPTED_OUT,
        False,
    )


def test_a_transient_vendor_failure_is_retryable(fake):
    fake.failure_rate = 1.0
    adapter = adapter_for(fake)

    [result] = adapter.send_batch([sms("send-1")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        "30001",
        True,
    )


def test_a_twilio_server_error_is_retryable(fake):
    fake.server_error_rate = 1.0
    adapter = adapter_for(fake)

    [result] = adapter.send_batch([sms("send-1")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        "20503",
        True,
    )


def test_wrong_credentials_are_a_permanent_failure(fake):
    adapter = adapter_for(fake, auth_token="0" * 32)

    [result] = adapter.send_batch([sms("send-1")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        "20003",
        False,
    )
    assert fake.sent == []


def test_an_unreachable_api_is_a_retryable_result_for_each_message(fake):
    adapter = adapter_for(fake)
    fake.stop()

    results = adapter.send_batch([sms("send-1"), sms("send-2")])

    assert [(r.send_id, r.error_code, r.retryable) for r in results] == [
        ("send-1", CONNECTION_ERROR, True),
        ("send-2", CONNECTION_ERROR, True),
    ]


def test_the_send_id_travels_in_the_status_callback_url(fake):
    adapter = adapter_for(fake)

    adapter.send_batch([sms("send-7")])

    [sent] = fake.sent
    assert sent.send_id == "send-7"
    assert sent.status_callback == (
        "http://testserver/api/webhooks/twilio/status?send_id=send-7"
    )


def test_the_registry_builds_twilio_from_settings(settings, fake):
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_STATUS_CALLBACK_URL = "https://crm.example.com/"
    reset_adapters()
    try:
        adapter = get_adapter("twilio")

        [result] = adapter.send_batch([sms("send-1")])
    finally:
        reset_adapters()

    assert isinstance(adapter, TwilioAdapter)
    assert result.accepted
    assert fake.sent[0].status_callback.startswith(
        "https://crm.example.com/api/webhooks/twilio/status?"
    )


def test_a_request_for_a_send_id_already_accepted_is_counted_as_a_duplicate(fake):
    adapter = adapter_for(fake)

    adapter.send_batch([sms("send-1"), sms("send-2")])
    adapter.send_batch([sms("send-1")])

    assert fake.requests_by_send_id == {"send-1": 2, "send-2": 1}
    assert fake.duplicate_sends == 1
    assert fake.stats()["send_ids_requested_twice"] == 1


def test_the_fake_counts_every_seconds_requests_and_refuses_above_its_limit(fake):
    fake.rate_limit_per_second = 5
    adapter = adapter_for(fake, max_in_flight=8)

    results = adapter.send_batch([sms(f"send-{n}") for n in range(30)])

    refused = [result for result in results if not result.accepted]
    assert {result.error_code for result in refused} == {"20429"}
    assert fake.stats()["rate_limited"] == len(refused)
    # The windows hold every request, those refused too; accepted ones never pass
    # the limit in any second.
    assert sum(fake.windows.values()) == 30
    assert len(fake.sent) <= 5 * len(fake.windows)


def test_a_paced_adapter_keeps_every_second_under_the_accounts_limit(fake):
    fake.rate_limit_per_second = 20
    adapter = adapter_for(fake, max_in_flight=8, rate_per_second=20)

    results = adapter.send_batch([sms(f"send-{n}") for n in range(45)])

    assert all(result.accepted for result in results)
    assert fake.max_window <= 20
    assert fake.stats()["rate_limited"] == 0


def test_a_429_halves_the_adapters_pace_for_a_while(fake):
    limiter = LocalRateLimiter()
    adapter = adapter_for(fake, rate_per_second=100, rate_limiter=limiter)
    fake.rate_limit_per_second = 1

    adapter.send_batch([sms("send-1"), sms("send-2")])

    first = limiter.reserve(adapter.rate_key, 100)
    second = limiter.reserve(adapter.rate_key, 100)

    # Slots are twice the usual 10 ms apart.
    assert second - first == pytest.approx(0.02, abs=0.002)


def test_a_request_that_may_have_reached_twilio_is_in_doubt_not_retryable(fake):
    fake.latency_ms = 500
    adapter = adapter_for(fake, timeout=0.1)

    [result] = adapter.send_batch([sms("send-1")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        IN_DOUBT,
        False,
    )


def test_the_fake_lists_messages_by_number_and_day_in_pages(fake):
    adapter = adapter_for(fake)
    adapter.send_batch(
        [sms(f"send-{n}") for n in range(5)] + [sms("other", to="+12025550199")]
    )
    today = datetime.now(UTC).date().isoformat()
    url = f"{adapter.messages_url}?To=%2B12025550100&DateSent={today}&PageSize=2"

    pages = []
    while url:
        answer = adapter.http.request("GET", url, headers=adapter.headers)
        page = json.loads(answer.data)
        pages.append(page)
        next_page = page["next_page_uri"]
        url = f"{fake.base_url}{next_page}" if next_page else None

    assert [len(page["messages"]) for page in pages] == [2, 2, 1]
    listed = [message for page in pages for message in page["messages"]]
    assert {message["to"] for message in listed} == {"+12025550100"}
    assert {message["sid"] for message in listed} == {
        sent.sid for sent in fake.sent if sent.to == "+12025550100"
    }
    assert {"sid", "status", "to", "body", "date_created"} <= set(listed[0])


def in_flight(message: OutboundMessage, **options) -> InFlightMessage:
    since = options.pop("since", datetime.now(UTC) - timedelta(seconds=5))
    return InFlightMessage(
        send_id=message.send_id,
        to=message.to,
        body=message.body,
        since=since,
        **options,
    )


def test_a_lookup_finds_a_message_twilio_accepted_with_its_sid(fake):
    adapter = adapter_for(fake)
    message = OutboundMessage("send-1", "sms", "+12025550100", "Hi Ann")
    [sent] = adapter.send_batch([message])

    found = adapter.lookup([in_flight(message)])

    assert found["send-1"].accepted
    assert found["send-1"].vendor_ref == sent.vendor_ref


def test_a_lookup_says_none_for_a_message_twilio_never_had(fake):
    adapter = adapter_for(fake)
    adapter.send_batch([OutboundMessage("other", "sms", "+12025550100", "Hi Bob")])

    found = adapter.lookup(
        [in_flight(OutboundMessage("send-1", "sms", "+12025550100", "Hi Ann"))]
    )

    assert found == {"send-1": None}


def test_a_lookup_ignores_messages_older_than_the_claim(fake):
    adapter = adapter_for(fake)
    message = OutboundMessage("send-1", "sms", "+12025550100", "Hi Ann")
    adapter.send_batch([message])

    found = adapter.lookup(
        [in_flight(message, since=datetime.now(UTC) + timedelta(minutes=5))]
    )

    assert found == {"send-1": None}


def test_a_lookup_that_cannot_tell_two_messages_apart_leaves_the_send_id_out(fake):
    adapter = adapter_for(fake)
    message = OutboundMessage("send-1", "sms", "+12025550100", "Hi Ann")
    twin = OutboundMessage("send-2", "sms", "+12025550100", "Hi Ann")
    adapter.send_batch([message, twin])

    assert adapter.lookup([in_flight(message)]) == {}


def test_a_lookup_passes_over_the_refs_of_our_other_messages(fake):
    adapter = adapter_for(fake)
    message = OutboundMessage("send-1", "sms", "+12025550100", "Hi Ann")
    twin = OutboundMessage("send-2", "sms", "+12025550100", "Hi Ann")
    [mine, theirs] = adapter.send_batch([message, twin])

    found = adapter.lookup([in_flight(message, known_refs={theirs.vendor_ref})])

    assert found["send-1"].vendor_ref == mine.vendor_ref


def test_a_lookup_twilio_cannot_answer_is_vendor_unavailable(fake):
    adapter = adapter_for(fake)
    fake.stop()

    with pytest.raises(VendorUnavailable):
        adapter.lookup([in_flight(sms("send-1"))])


def test_the_fake_calls_status_callbacks_back_signed(fake):
    received = []

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append(
                (self.path, self.headers["X-Twilio-Signature"], dict(parse_qsl(body)))
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callbacks = TwilioFake(callback_delay_ms=0, undelivered_rate=1.0).start()
    try:
        public = f"http://127.0.0.1:{server.server_address[1]}"
        adapter = adapter_for(callbacks, public_url=public)

        adapter.send_batch([sms("send-1")])
        wait_for(lambda: len(received) == 2, timeout=10)
    finally:
        callbacks.stop()
        server.shutdown()

    assert [params["MessageStatus"] for _, _, params in received] == [
        "sent",
        "undelivered",
    ]
    path, signature, params = received[1]
    assert params["ErrorCode"] == "30003"
    assert path == "/api/webhooks/twilio/status?send_id=send-1"
    assert signature == twilio_signature(callbacks.auth_token, public + path, params)


def test_without_its_rate_limiter_a_message_is_retryable_and_never_requested(fake):
    limiter = RedisRateLimiter(redis.Redis(host="127.0.0.1", port=1))
    adapter = adapter_for(fake, rate_per_second=10, rate_limiter=limiter)

    [result] = adapter.send_batch([sms("send-1")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        RATE_LIMIT_UNAVAILABLE,
        True,
    )
    assert fake.requests_by_send_id == {}


def test_one_worker_with_many_threads_shares_a_few_redis_connections(fake, settings):
    settings.RATE_LIMIT_REDIS_URL = TEST_REDIS_URL
    get_rate_limiter.cache_clear()
    try:
        adapter = adapter_for(
            fake, max_in_flight=64, rate_per_second=1000, rate_limiter=None
        )
        results = adapter.send_batch([sms(f"send-{n}") for n in range(200)])
    finally:
        get_rate_limiter.cache_clear()

    assert all(result.accepted for result in results)
