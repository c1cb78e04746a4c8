"""The simulator's test Redis and the messages the vendor tests send it."""

import redis

from vendors.base import OutboundMessage
from vendors.simulator import SimulatorAdapter
from vendors.simulator_store import MemoryStore

# Db 14 belongs to the vendor tests; the broker's tests use 15.
TEST_REDIS_URL = "redis://127.0.0.1:6379/14"


def other_redis_client() -> redis.Redis:
    """A second connection, as another worker process would have."""
    return redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)


def sms(index: int, body: str = "Hi there", prefix: str = "send") -> OutboundMessage:
    return OutboundMessage(
        send_id=f"{prefix}-{index}", channel="sms", to="+15550001111", body=body
    )


def send_in_batches(simulator, messages, size=200):
    """Send `messages` in batches of `size`; every result, in order."""
    results = []
    for start in range(0, len(messages), size):
        results += simulator.send_batch(messages[start : start + size])
    return results


class RecordingSimulator(SimulatorAdapter):
    """The simulator, in memory, keeping every message it was handed: what a test
    reads to see what the vendor received (headers included)."""

    def __init__(self, **options) -> None:
        options.setdefault("store", MemoryStore())
        options.setdefault("success_rate", 1.0)
        super().__init__(**options)
        self.received: list[OutboundMessage] = []

    def send_batch(self, messages):
        self.received += messages
        return super().send_batch(messages)
