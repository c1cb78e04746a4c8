"""The SMTP adapter delivering to a local SMTP server on loopback."""

from collections.abc import Iterator

import pytest

from tests.support.smtp import (
    PASSWORD,
    USERNAME,
    SmtpServer,
    free_port,
    start_server,
)
from vendors.base import InvalidPayload, OutboundMessage, VendorUnavailable
from vendors.registry import get_adapter, reset_adapters
from vendors.smtp import SEND_ID_HEADER, SmtpAdapter

FROM = "news@crm.example.com"
# The loopback server takes a login without TLS, as no real relay should.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def server() -> Iterator[tuple[SmtpServer, int]]:
    server = SmtpServer()
    controller = start_server(server)
    yield server, controller.port
    controller.stop()


def adapter_at(port: int, **options) -> SmtpAdapter:
    defaults = {
        "host": "127.0.0.1",
        "port": port,
        "username": USERNAME,
        "password": PASSWORD,
        "use_tls": False,
        "use_ssl": False,
        "from_email": FROM,
        "timeout": 5,
    }
    return SmtpAdapter(**{**defaults, **options})


def email(n: int, **fields) -> OutboundMessage:
    return OutboundMessage(
        send_id=f"send-{n}",
        channel="email",
        to=fields.pop("to", f"person{n}@example.com"),
        subject=f"Hello {n}",
        body=f"Dear person {n}, our sale starts today.",
        **fields,
    )


def test_a_batch_is_delivered_over_one_connection_with_each_message_intact(server):
    smtp, port = server
    messages = [email(n) for n in range(5)]

    results = adapter_at(port).send_batch(messages)

    assert [(r.send_id, r.accepted, r.vendor_ref) for r in results] == [
        (m.send_id, True, m.send_id) for m in messages
    ]
    assert smtp.connections == 1
    assert smtp.logins == 1
    got = {r.message[SEND_ID_HEADER]: r for r in smtp.received}
    assert set(got) == {m.send_id for m in messages}
    for message in messages:
        received = got[message.send_id]
        assert received.rcpt_tos == [message.to]
        assert received.mail_from == FROM
        assert received.message["Subject"] == message.subject
        assert received.message.get_content().strip() == message.body


def test_a_long_batch_opens_a_new_connection_every_so_many_messages(server):
    smtp, port = server

    results = adapter_at(port, messages_per_connection=4).send_batch(
        [email(n) for n in range(10)]
    )

    assert all(result.accepted for result in results)
    assert smtp.connections == 3


def test_the_list_unsubscribe_headers_reach_the_recipient(server):
    smtp, port = server
    unsubscribe = {
        "List-Unsubscribe": "<https://crm.example.com/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    adapter_at(port).send_batch([email(1, headers=tuple(unsubscribe.items()))])

    [received] = smtp.received
    assert received.message["List-Unsubscribe"] == unsubscribe["List-Unsubscribe"]
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_refused_address_fails_for_good_and_the_rest_still_go(server):
    smtp, port = server
    smtp.refuse["gone@example.com"] = "550 5.1.1 No such user"

    results = adapter_at(port).send_batch(
        [email(1), email(2, to="gone@example.com"), email(3)]
    )

    assert [(r.accepted, r.error_code, r.retryable) for r in results] == [
        (True, None, False),
        (False, "smtp_550", False),
        (True, None, False),
    ]
    assert len(smtp.received) == 2


def test_a_temporary_refusal_is_retried_later(server):
    smtp, port = server
    smtp.refuse["busy@example.com"] = "451 4.3.0 Try again later"

    [result] = adapter_at(port).send_batch([email(1, to="busy@example.com")])

    assert (result.accepted, result.error_code, result.retryable) == (
        False,
        "smtp_451",
        True,
    )


def test_an_address_that_cannot_be_written_fails_for_good(server):
    _, port = server

    [result] = adapter_at(port).send_batch([email(1, to="broken\n@example.com")])

    assert (result.accepted, result.retryable) == (False, False)


def test_wrong_credentials_make_the_relay_unavailable(server):
    smtp, port = server

    with pytest.raises(VendorUnavailable):
        adapter_at(port, password="wrong").send_batch([email(1)])

    assert smtp.received == []


def test_an_unreachable_relay_makes_the_vendor_unavailable():
    with pytest.raises(VendorUnavailable):
        adapter_at(free_port(), timeout=2).send_batch([email(1)])


def test_a_relay_lost_after_some_were_sent_retries_only_the_rest(server):
    smtp, port = server
    smtp.hang_up_after = 2

    results = adapter_at(port).send_batch([email(n) for n in range(5)])

    assert [r.accepted for r in results] == [True, True, False, False, False]
    assert all(r.retryable for r in results[2:])
    assert len(smtp.received) == 2


def test_a_relay_lost_before_anything_was_sent_makes_it_unavailable(server):
    smtp, port = server
    smtp.hang_up_after = 0

    with pytest.raises(VendorUnavailable):
        adapter_at(port).send_batch([email(1), email(2)])


def test_a_relay_sends_no_callbacks(server):
    _, port = server
    adapter = adapter_at(port)

    assert not adapter.verify_signature(body=b"{}", headers={})
    with pytest.raises(InvalidPayload):
        adapter.parse_receipts(body=b"{}", headers={})


def test_the_registry_builds_smtp_from_settings(settings, server):
    smtp, port = server
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = USERNAME, PASSWORD
    settings.DEFAULT_FROM_EMAIL = "hello@crm.example.com"
    reset_adapters()
    try:
        [result] = get_adapter("smtp").send_batch([email(1)])
    finally:
        reset_adapters()

    assert result.accepted
    assert smtp.received[0].mail_from == "hello@crm.example.com"
