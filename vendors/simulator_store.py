"""Where the simulator keeps its state: in this process, or in Redis for all of them.

The simulator decides outcomes itself; a store only answers two questions per vendor
call atomically (what was already decided for these send ids, and which attempt this
is) and records the decisions, first writer wins. Both stores behave the same, so a
test of one speaks for the other.
"""

import abc
import heapq
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, NamedTuple

import redis
from django.conf import settings

from vendors.base import VendorUnavailable
from vendors.simulator_scripts import BEGIN, COMMIT, POP

DEFAULT_PREFIX = "sim:"
# A vendor call that waits longer than this on the store counts as the vendor
# timing out: the caller gets VendorUnavailable and retries the batch later.
REDIS_TIMEOUT_SECONDS = 5.0

Kind = Literal["accepted", "permanent", "retryable"]


class Decision(NamedTuple):
    """One message's outcome, as the simulator decided it, for the store to record."""

    send_id: str
    kind: Kind
    error_code: str
    # The encoded result kept for later attempts at the same send id ("" if retryable).
    result: str
    # When its receipt is due (ms since the epoch) and the receipt itself, if accepted.
    receipt_due_ms: int = 0
    receipt: str = ""


class SimulatorStore(abc.ABC):
    """The simulator's shared state; every method is atomic."""

    @abc.abstractmethod
    def begin(self, send_ids: Sequence[str]) -> tuple[float | None, list[int | str]]:
        """The success rate set at run time, and per send id either its earlier final
        result (str; counted as a duplicate) or the number of this new attempt (int).
        """

    @abc.abstractmethod
    def commit(self, decisions: Sequence[Decision]) -> list[str | None]:
        """Record the decisions. Per decision None, or the final result another call
        recorded for the send id meanwhile (that one stands; counted as a duplicate).
        """

    @abc.abstractmethod
    def pop_receipts(self, *, now_ms: int, limit: int) -> list[str]:
        """Remove and return up to `limit` receipts due by now, oldest first."""

    @abc.abstractmethod
    def success_rate(self) -> float | None:
        """The rate set at run time, if one was."""

    @abc.abstractmethod
    def set_success_rate(self, rate: float) -> None: ...

    @abc.abstractmethod
    def counters(self) -> dict[str, int]:
        """accepted, failed:<code>, duplicates, receipts_emitted."""

    @abc.abstractmethod
    def pending_receipts(self) -> int: ...

    @abc.abstractmethod
    def accepted_counts(self) -> dict[str, int]:
        """How many times each send id was accepted: once, if idempotency holds."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything, the run-time success rate included."""


class MemoryStore(SimulatorStore):
    """State in this process only: the embedded default, and fast tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._results: dict[str, str] = {}
            self._attempts: Counter[str] = Counter()
            self._accepted: Counter[str] = Counter()
            self._counters: Counter[str] = Counter()
            self._receipts: list[tuple[int, int, str]] = []
            self._sequence = 0
            self._rate: float | None = None

    def begin(self, send_ids: Sequence[str]) -> tuple[float | None, list[int | str]]:
        answers: list[int | str] = []
        with self._lock:
            for send_id in send_ids:
                result = self._results.get(send_id)
                if result is not None:
                    self._counters["duplicates"] += 1
                    answers.append(result)
                else:
                    self._attempts[send_id] += 1
                    answers.append(self._attempts[send_id])
            return self._rate, answers

    def commit(self, decisions: Sequence[Decision]) -> list[str | None]:
        answers: list[str | None] = []
        with self._lock:
            for decision in decisions:
                existing = self._results.get(decision.send_id)
                if existing is not None:
                    self._counters["duplicates"] += 1
                    answers.append(existing)
                    continue
                answers.append(None)
                if decision.kind == "accepted":
                    self._results[decision.send_id] = decision.result
                    self._counters["accepted"] += 1
                    self._accepted[decision.send_id] += 1
                    self._sequence += 1
                    heapq.heappush(
                        self._receipts,
                        (decision.receipt_due_ms, self._sequence, decision.receipt),
                    )
                else:
                    if decision.kind == "permanent":
                        self._results[decision.send_id] = decision.result
                    self._counters[f"failed:{decision.error_code}"] += 1
        return answers

    def pop_receipts(self, *, now_ms: int, limit: int) -> list[str]:
        popped: list[str] = []
        with self._lock:
            while (
                self._receipts
                and len(popped) < limit
                and self._receipts[0][0] <= now_ms
            ):
                popped.append(heapq.heappop(self._receipts)[2])
            self._counters["receipts_emitted"] += len(popped)
        return popped

    def success_rate(self) -> float | None:
        with self._lock:
            return self._rate

    def set_success_rate(self, rate: float) -> None:
        with self._lock:
            self._rate = rate

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {name: count for name, count in self._counters.items() if count}

    def pending_receipts(self) -> int:
        with self._lock:
            return len(self._receipts)

    def accepted_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._accepted)


class RedisStore(SimulatorStore):
    """State in Redis, shared by every worker process; one script call per step."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._results = f"{prefix}results"
        self._attempts = f"{prefix}attempts"
        self._accepted = f"{prefix}accepted"
        self._counters = f"{prefix}counters"
        self._receipts = f"{prefix}receipts"
        self._rate = f"{prefix}success_rate"
        self._begin = client.register_script(BEGIN)
        self._commit = client.register_script(COMMIT)
        self._pop = client.register_script(POP)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> "RedisStore":
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        return cls(client, prefix=prefix)

    def begin(self, send_ids: Sequence[str]) -> tuple[float | None, list[int | str]]:
        with _unavailable_on_failure():
            reply = self._begin(
                keys=[self._results, self._attempts, self._counters, self._rate],
                args=[json.dumps(list(send_ids))],
            )
        rate, *answers = json.loads(reply)
        return (float(rate) if rate else None), answers

    def commit(self, decisions: Sequence[Decision]) -> list[str | None]:
        if not decisions:
            return []
        # The due time goes as a string: Lua would format a number in 14 digits.
        encoded = json.dumps(
            [
                [
                    decision.send_id,
                    decision.kind,
                    decision.error_code,
                    decision.result,
                    str(decision.receipt_due_ms),
                    decision.receipt,
                ]
                for decision in decisions
            ]
        )
        with _unavailable_on_failure():
            reply = self._commit(
                keys=[self._results, self._counters, self._accepted, self._receipts],
                args=[encoded],
            )
        answers: list[str | None] = [None] * len(decisions)
        for position, existing in json.loads(reply) if reply else ():
            answers[position] = existing
        return answers

    def pop_receipts(self, *, now_ms: int, limit: int) -> list[str]:
        with _unavailable_on_failure():
            reply = self._pop(
                keys=[self._receipts, self._counters], args=[now_ms, limit]
            )
        return json.loads(reply) if reply else []

    def success_rate(self) -> float | None:
        with _unavailable_on_failure():
            rate = self.client.get(self._rate)
        return float(rate) if rate else None

    def set_success_rate(self, rate: float) -> None:
        with _unavailable_on_failure():
            self.client.set(self._rate, repr(rate))

    def counters(self) -> dict[str, int]:
        with _unavailable_on_failure():
            raw = self.client.hgetall(self._counters)
        return {name: int(count) for name, count in raw.items() if int(count)}

    def pending_receipts(self) -> int:
        with _unavailable_on_failure():
            return self.client.zcard(self._receipts)

    def accepted_counts(self) -> dict[str, int]:
        with _unavailable_on_failure():
            raw = self.client.hgetall(self._accepted)
        return {send_id: int(count) for send_id, count in raw.items()}

    def reset(self) -> None:
        with _unavailable_on_failure():
            self.client.delete(
                self._results,
                self._attempts,
                self._accepted,
                self._counters,
                self._receipts,
                self._rate,
            )


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    # The simulator's store being out of reach is, to its callers, the vendor being
    # out of reach: a whole-batch failure to retry later.
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise VendorUnavailable(f"simulator store unreachable: {error}") from error


_stores: dict[str, SimulatorStore] = {}
_stores_lock = threading.Lock()


def store_from_settings() -> SimulatorStore:
    """The store the settings call for, one per process and location.

    SIMULATOR_REDIS_URL if set, else the Celery broker when it is Redis (so every
    worker shares one simulator), else memory in this process (the embedded default,
    where the worker is a thread of this process).
    """
    url = settings.SIMULATOR_REDIS_URL
    if not url and settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        url = settings.CELERY_BROKER_URL
    with _stores_lock:
        key = url or "memory"
        if key not in _stores:
            _stores[key] = RedisStore.from_url(url) if url else MemoryStore()
        return _stores[key]
