"""/metrics: behind a bearer token, and counting messages as the dispatches do."""

import pytest

from config.queues import Queue
from tests.messaging.factories import DispatchFactory
from tests.support.operations import samples

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def test_metrics_answer_while_a_token_is_set_and_are_off_without_one(client, settings):
    # Given a token set, then none
    settings.METRICS_TOKEN = TOKEN
    on = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    settings.METRICS_TOKEN = ""

    # When scraped with the token that was set
    off = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    # Then it answers only while the setting holds a token
    assert (on.status_code, off.status_code) == (200, 404)


def test_metrics_ask_for_the_bearer_token(client, settings):
    # Given a token set
    settings.METRICS_TOKEN = TOKEN

    # When asked without one, with a wrong one, with another scheme
    missing = scrape(client)
    wrong = scrape(client, HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = scrape(client, HTTP_AUTHORIZATION=f"Basic {TOKEN}")

    # Then nothing is shown
    assert (missing.status_code, missing["WWW-Authenticate"]) == (
        401,
        'Bearer realm="metrics"',
    )
    assert wrong.status_code == 403
    assert basic.status_code == 401
    assert b"crm_messages" not in missing.content + wrong.content + basic.content


def test_metrics_count_messages_by_status_and_channel_as_the_dispatches_do(
    client, settings
):
    # Given two SMS dispatches and an email one with their counters
    settings.METRICS_TOKEN = TOKEN
    DispatchFactory(channel="sms", sent=10, delivered=8, failed=3, skipped=1)
    DispatchFactory(channel="sms", sent=5, delivered=5, pending=2, cancelled=4)
    DispatchFactory(channel="email", sent=7, delivered=6, failed=1)

    # When Prometheus scrapes
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    # Then each status of each channel is the sum of the counters, and every queue
    # has a depth
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    values = samples(response.content.decode())

    def messages(status: str, channel: str) -> float:
        labels = frozenset({"status": status, "channel": channel}.items())
        return values[("crm_messages", labels)]

    assert [messages(s, "sms") for s in ("sent", "delivered", "failed")] == [
        15,
        13,
        3,
    ]
    assert [messages(s, "sms") for s in ("pending", "skipped", "cancelled")] == [
        2,
        1,
        4,
    ]
    assert [messages(s, "email") for s in ("sent", "delivered", "failed")] == [
        7,
        6,
        1,
    ]
    queues = {
        dict(labels)["queue"] for name, labels in values if name == "crm_queue_depth"
    }
    assert queues == {queue.value for queue in Queue}
