"""The shared rate limiter: one schedule per key, in Redis for a fleet."""

import threading
import time
from itertools import pairwise

import pytest
import redis

from tests.support.simulator import TEST_REDIS_URL
from vendors.rate_limit import (
    SLOW_DOWN_SECONDS,
    LocalRateLimiter,
    RedisRateLimiter,
)


@pytest.fixture
def redis_limiter():
    client = redis.Redis.from_url(TEST_REDIS_URL)
    keys = client.keys("ratelimit:test-*")
    if keys:
        client.delete(*keys)
    return RedisRateLimiter(client)


def test_slots_are_spaced_by_the_rate_across_limiters_sharing_redis(redis_limiter):
    # Given two workers' limiters on the same Redis
    other = RedisRateLimiter(redis.Redis.from_url(TEST_REDIS_URL))

    # When they reserve in turn at 10 per second
    slots = [
        time.monotonic() + limiter.reserve("test-shared", 10)
        for limiter in [redis_limiter, other] * 3
    ]

    # Then the slots follow one schedule, 100 ms apart
    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert gaps == pytest.approx([0.1] * 5, abs=0.02)


def test_threads_waiting_on_the_limiter_go_no_faster_than_the_rate(redis_limiter):
    times = []

    def worker():
        for _ in range(5):
            redis_limiter.wait("test-threads", 50)
            times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 20 requests at 50/s: the last goes 19 intervals (380 ms) after the first.
    assert max(times) - started >= 0.36
    assert len(times) == 20


def test_a_slow_down_halves_the_rate_once_per_refusal_spell(redis_limiter):
    redis_limiter.reserve("test-slow", 10)
    redis_limiter.slow_down("test-slow")
    redis_limiter.slow_down("test-slow")

    wait = time.monotonic() + redis_limiter.reserve("test-slow", 10)
    after = time.monotonic() + redis_limiter.reserve("test-slow", 10)

    # The slot already due stays; the next is 200 ms on, not 100 (nor 400).
    assert after - wait == pytest.approx(0.2, abs=0.02)
    ttl = redis_limiter.client.pttl("ratelimit:test-slow:slow")
    assert 0 < ttl <= SLOW_DOWN_SECONDS * 1000


def test_keys_do_not_share_a_schedule(redis_limiter):
    redis_limiter.reserve("test-a", 1)

    assert redis_limiter.reserve("test-b", 1) == pytest.approx(0.0, abs=0.01)
    assert redis_limiter.reserve("test-a", 1) == pytest.approx(1.0, abs=0.1)


def test_the_local_limiter_keeps_the_same_schedule_in_memory():
    clock = [100.0]
    limiter = LocalRateLimiter(clock=lambda: clock[0])

    first = [limiter.reserve("k", 4) for _ in range(3)]
    clock[0] += 10
    limiter.slow_down("k")
    slowed = [limiter.reserve("k", 4) for _ in range(2)]
    clock[0] += SLOW_DOWN_SECONDS + 1
    recovered = [limiter.reserve("k", 4) for _ in range(2)]

    assert first == [0.0, 0.25, 0.5]
    assert slowed == [0.0, 0.5]
    assert recovered == [0.0, 0.25]


def test_no_rate_means_no_wait():
    limiter = LocalRateLimiter()

    started = time.monotonic()
    for _ in range(100):
        limiter.wait("k", 0)

    assert time.monotonic() - started < 0.05
