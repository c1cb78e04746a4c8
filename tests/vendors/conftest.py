"""Fixtures for the vendor tests: the simulator on each of its stores, a set clock."""

from collections.abc import Callable, Iterator

import pytest

from tests.support.simulator import TEST_REDIS_URL
from vendors.simulator import SimulatorAdapter
from vendors.simulator_store import MemoryStore, RedisStore, SimulatorStore


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def redis_store() -> Iterator[RedisStore]:
    store = RedisStore.from_url(TEST_REDIS_URL)
    store.client.flushdb()
    yield store
    store.client.flushdb()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> SimulatorStore:
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("redis_store")


@pytest.fixture
def clock() -> Clock:
    return Clock()


SimulatorFactory = Callable[..., SimulatorAdapter]


@pytest.fixture
def make_simulator(store: SimulatorStore, clock: Clock) -> SimulatorFactory:
    """A simulator on the test's store; keyword arguments override its defaults."""

    def make(**options) -> SimulatorAdapter:
        defaults = {
            "store": store,
            "seed": "tests",
            "success_rate": 0.9,
            "latency_ms": 0,
            "receipt_delay_ms": 0,
            "webhook_secret": "test-secret",
            "clock": clock,
        }
        return SimulatorAdapter(**{**defaults, **options})

    return make


@pytest.fixture
def simulator(make_simulator: SimulatorFactory) -> SimulatorAdapter:
    return make_simulator()
