"""The simulated vendor: the default adapter, with a vendor's failures and receipts.

What each message's outcome is lives in simulator_outcomes, the callbacks in
simulator_callbacks, the shared state in simulator_store.
"""

import hashlib
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings

from vendors import simulator_callbacks as callbacks
from vendors.base import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    SendResult,
    VendorAdapter,
)
from vendors.simulator_outcomes import decided, decode_receipt, decode_result
from vendors.simulator_store import Decision, SimulatorStore, store_from_settings

if TYPE_CHECKING:
    from vendors.models import VendorAccount

# Like a real bulk API; the pipeline's batches of 200 go in one call.
MAX_BATCH_SIZE = 500


@dataclass(frozen=True)
class SimulatorStats:
    accepted: int
    failed: int
    failed_by_code: dict[str, int]
    duplicates: int
    receipts_emitted: int
    receipts_pending: int
    success_rate: float

    @property
    def messages(self) -> int:
        """Distinct attempts the simulator decided on (duplicates are not)."""
        return self.accepted + self.failed


class SimulatorAdapter(VendorAdapter):
    """A vendor with configurable success rate, failures, latency, cost and receipts.

    Idempotent on send_id: a send id accepted or permanently failed before gets the
    same result again and is not a new message; one that failed retryably is tried
    again as its next attempt.
    """

    name = "simulator"

    def __init__(
        self,
        *,
        store: SimulatorStore | None = None,
        success_rate: float | None = None,
        seed: str | None = None,
        latency_ms: int | None = None,
        receipt_delay_ms: int | None = None,
        webhook_secret: str | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store if store is not None else store_from_settings()
        self.default_success_rate = _checked_rate(
            settings.SIMULATOR_SUCCESS_RATE if success_rate is None else success_rate
        )
        seed = settings.SIMULATOR_SEED if seed is None else seed
        # Unseeded, each instance draws its own seed: random, yet one code path.
        self.seed = seed or secrets.token_hex(16)
        self.latency_ms = (
            settings.SIMULATOR_LATENCY_MS if latency_ms is None else latency_ms
        )
        self.receipt_delay_ms = (
            settings.SIMULATOR_RECEIPT_DELAY_MS
            if receipt_delay_ms is None
            else receipt_delay_ms
        )
        self.webhook_secret = (
            settings.SIMULATOR_WEBHOOK_SECRET
            if webhook_secret is None
            else webhook_secret
        ).encode()
        self.max_batch_size = max_batch_size
        self.clock = clock

    @classmethod
    def from_account(
        cls, account: "VendorAccount", secrets: Mapping[str, str]
    ) -> "SimulatorAdapter":
        """The simulator has nothing per account: the one the settings describe."""
        return cls()

    # --- Sending ------------------------------------------------------------------

    @property
    def receipt_delay(self) -> float:
        return self.receipt_delay_ms / 1000

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), self.max_batch_size):
            results += self._send_call(messages[start : start + self.max_batch_size])
        return results

    def _send_call(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        # Half the latency is the request's way in, half the answer's way back: a
        # worker that dies in the second half leaves messages the vendor accepted
        # but the worker never recorded, the case idempotency on send_id is for.
        self._wait(self.latency_ms / 2)
        stored_rate, answers = self.store.begin([m.send_id for m in messages])
        rate = self.default_success_rate if stored_rate is None else stored_rate
        # One receipt due time for the whole call, as one clock reading gave it.
        due_ms = math.ceil(self.clock() * 1000) + self.receipt_delay_ms
        # The seed's part of every hash input, hashed once per call: each message
        # then hashes only its own send id and attempt (a copy, not a new state).
        seeded = hashlib.blake2b(f"{self.seed}\x1f".encode(), digest_size=30)
        results: list[SendResult] = []
        undecided: list[int] = []
        decisions: list[Decision] = []
        for index, (message, answer) in enumerate(zip(messages, answers, strict=True)):
            if isinstance(answer, str):
                results.append(decode_result(message.send_id, answer))
            else:
                decision, result = decided(
                    message, attempt=answer, rate=rate, due_ms=due_ms, seeded=seeded
                )
                results.append(result)
                undecided.append(index)
                decisions.append(decision)
        for index, earlier in zip(undecided, self.store.commit(decisions), strict=True):
            # Another call settled this send id in the meantime: its result stands.
            if earlier is not None:
                results[index] = decode_result(messages[index].send_id, earlier)
        self._wait(self.latency_ms / 2)
        return results

    def _wait(self, milliseconds: float) -> None:
        if milliseconds > 0:
            time.sleep(milliseconds / 1000)

    # --- Run-time control and statistics ------------------------------------------

    @property
    def success_rate(self) -> float:
        stored = self.store.success_rate()
        return self.default_success_rate if stored is None else stored

    def set_success_rate(self, rate: float) -> None:
        """Change the success rate for every process sharing the store, from now on."""
        self.store.set_success_rate(_checked_rate(rate))

    def stats(self) -> SimulatorStats:
        counters = self.store.counters()
        failed_by_code = {
            name.removeprefix("failed:"): count
            for name, count in counters.items()
            if name.startswith("failed:")
        }
        return SimulatorStats(
            accepted=counters.get("accepted", 0),
            failed=sum(failed_by_code.values()),
            failed_by_code=failed_by_code,
            duplicates=counters.get("duplicates", 0),
            receipts_emitted=counters.get("receipts_emitted", 0),
            receipts_pending=self.store.pending_receipts(),
            success_rate=self.success_rate,
        )

    def accepted_counts(self) -> dict[str, int]:
        """How many times each send id was accepted: 1 each, if nothing went twice."""
        return self.store.accepted_counts()

    def reset(self) -> None:
        """Forget every message, statistic and receipt, and the run-time rate."""
        self.store.reset()

    # --- Receipts -----------------------------------------------------------------

    def fetch_receipts(self, *, limit: int) -> list[Receipt]:
        now_ms = math.floor(self.clock() * 1000)
        popped = self.store.pop_receipts(now_ms=now_ms, limit=limit)
        # A vendor call's receipts share one due time: convert each time once.
        times: dict[str, tuple[datetime, str]] = {}
        return [decode_receipt(raw, times) for raw in popped]

    def sign(self, body: bytes, timestamp: int) -> str:
        """The hex HMAC-SHA256 of "<timestamp>.<body>" under the webhook secret."""
        return callbacks.sign(self.webhook_secret, body, timestamp)

    def webhook_callback(
        self, receipts: Sequence[Receipt], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed callback carrying these receipts."""
        return self._signed_callback(
            callbacks.receipts_payload(receipts), timestamp=timestamp
        )

    def inbound_callback(
        self, messages: Sequence[InboundMessage], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed callback forwarding people's replies."""
        return self._signed_callback(
            callbacks.inbound_payload(messages), timestamp=timestamp
        )

    def _signed_callback(
        self, payload: dict, *, timestamp: int | None
    ) -> tuple[bytes, dict[str, str]]:
        timestamp = int(self.clock()) if timestamp is None else timestamp
        return callbacks.signed_callback(
            self.webhook_secret, payload, timestamp=timestamp
        )

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        return callbacks.signature_valid(
            self.webhook_secret,
            body=body,
            headers=headers,
            now=self.clock() if now is None else now,
        )

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        return callbacks.parse_receipts(body)

    def parse_inbound(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[InboundMessage]:
        return callbacks.parse_inbound(body)


def _checked_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a success rate is between 0 and 1, got {rate}")
    return float(rate)
