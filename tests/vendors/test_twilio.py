"""The Twilio adapter against a wire-protocol fake of Twilio's Messages API."""

from collections.abc import Iterator

import pytest

from tests.support.twilio import adapter_for
from vendors.base import OutboundMessage
from vendors.registry import get_adapter, reset_adapters
from vendors.twilio import CONNECTION_ERROR, OPTED_OUT, TwilioAdapter
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
        "http://testserver/api/webhooks/twilio/receipts?send_id=send-7"
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
        "https://crm.example.com/api/webhooks/twilio/receipts?"
    )
