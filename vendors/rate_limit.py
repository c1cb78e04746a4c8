"""A rate limit shared by every worker: one token bucket per vendor account.

The bucket is a GCRA (generic cell rate algorithm): one timestamp per key, the
theoretical time the next request is due. Each request reserves the next slot
atomically (a Lua script on Redis, so the whole fleet shares one schedule) and waits
until it comes, which spaces requests `1/rate` apart with no retry loop and one
Redis call a request. A vendor's 429 halves the key's rate for SLOW_DOWN_SECONDS.
Without Redis (the embedded demo, one process) the same schedule lives in memory.
"""

import threading
import time
from functools import cache

import redis
from django.conf import settings

# How long a 429 halves the rate for: long enough for the vendor's own window to
# pass, short enough that one refusal does not cost a campaign minutes.
SLOW_DOWN_SECONDS = 5.0
SLOW_DOWN_FACTOR = 0.5
# Requests a key may take back to back after a quiet spell. One keeps every
# second's count at or under the rate, which is what a vendor's window checks.
BURST = 1
# The share of the rate the fleet aims at: requests leave their slots a few ms late
# (thread wake-ups on a busy box), which put a second 1.4% over an exact schedule
# at 500/s (docs/vendors.md).
HEADROOM = 0.97
# A caller that wakes this late for its slot (its process was descheduled) takes a
# new one: sent late, it would bunch with the fleet's on-time requests.
LATE_SECONDS = 0.02
# Slots a caller forfeits before it goes anyway (a box too busy to pace at all).
MAX_SLOTS = 5

# KEYS: the schedule's key, the slow-down key. ARGV: rate per second, burst.
# Returns the seconds to wait before the reserved slot (a string: Lua numbers
# reach Redis replies as integers).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local factor = tonumber(redis.call('GET', KEYS[2]) or '1')
local interval = 1 / (rate * factor)
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if due < now then due = now end
local slot = due - tolerance
if slot < now then slot = now end
local next_due = due + interval
redis.call('SET', KEYS[1], tostring(next_due), 'PX',
  math.ceil((next_due - now) * 1000) + 1000)
return tostring(slot - now)
"""


# Connections one process keeps to the limiter's Redis: its threads share them,
# waiting their turn for a reservation that takes a fraction of a millisecond.
REDIS_CONNECTIONS = 8


class RateLimitUnavailable(Exception):
    """The shared limiter cannot be reached: nothing may be sent under it now."""


class RateLimiter:
    """Reserves slots on a schedule per key; `wait` sleeps until the slot."""

    def reserve(self, key: str, rate: float) -> float:
        """Reserve the key's next slot at `rate` per second; seconds until it."""
        raise NotImplementedError

    def slow_down(self, key: str) -> None:
        """The vendor refused for rate: halve the key's rate for a while."""
        raise NotImplementedError

    def wait(self, key: str, rate: float | None) -> None:
        """Block until this caller may make one request under the key's rate."""
        if not rate or rate <= 0:
            return
        for _ in range(MAX_SLOTS):
            slot = time.monotonic() + self.reserve(key, rate * HEADROOM)
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() - slot <= LATE_SECONDS:
                return


class RedisRateLimiter(RateLimiter):
    """The fleet's schedule in Redis: every worker reserves from the same key."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE)

    def reserve(self, key: str, rate: float) -> float:
        keys = [f"ratelimit:{key}", f"ratelimit:{key}:slow"]
        try:
            return float(self._reserve(keys=keys, args=[rate, BURST]))
        except redis.RedisError as error:
            raise RateLimitUnavailable(type(error).__name__) from error

    def slow_down(self, key: str) -> None:
        # NX: the many refusals of one crowded second halve the rate once.
        try:
            self.client.set(
                f"ratelimit:{key}:slow",
                SLOW_DOWN_FACTOR,
                px=int(SLOW_DOWN_SECONDS * 1000),
                nx=True,
            )
        except redis.RedisError as error:
            raise RateLimitUnavailable(type(error).__name__) from error


class LocalRateLimiter(RateLimiter):
    """The same schedule in this process's memory, for a fleet of one."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}
        self._slow_until: dict[str, float] = {}

    def reserve(self, key: str, rate: float) -> float:
        with self._lock:
            now = self.clock()
            factor = SLOW_DOWN_FACTOR if self._slow_until.get(key, 0) > now else 1
            interval = 1 / (rate * factor)
            due = max(self._due.get(key, now), now)
            slot = max(due - (BURST - 1) * interval, now)
            self._due[key] = due + interval
            return slot - now

    def slow_down(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            if self._slow_until.get(key, 0) <= now:
                self._slow_until[key] = now + SLOW_DOWN_SECONDS


@cache
def get_rate_limiter() -> RateLimiter:
    """This process's limiter: on RATE_LIMIT_REDIS_URL, else the broker's Redis,
    else in memory (the embedded demo has one process to pace)."""
    url = settings.RATE_LIMIT_REDIS_URL
    if not url and settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        url = settings.CELERY_BROKER_URL
    if not url:
        return LocalRateLimiter()
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=REDIS_CONNECTIONS, timeout=10
    )
    return RedisRateLimiter(redis.Redis(connection_pool=pool))
