"""The simulated vendor: the default adapter, with a vendor's failures and receipts.

Every outcome is drawn from a hash of (seed, send id, attempt number of that send id),
not from a shared random stream, so a seeded run gives the same outcomes however the
workers happen to interleave.
"""

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from vendors.base import (
    MAX_ERROR_CODE,
    MAX_INBOUND_BODY,
    MAX_SENDER,
    MAX_VENDOR_REF,
    Channel,
    InboundMessage,
    InvalidPayload,
    OutboundMessage,
    Receipt,
    SendResult,
    VendorAdapter,
)
from vendors.payloads import read_json
from vendors.simulator_store import Decision, SimulatorStore, store_from_settings
from vendors.sms import sms_segments

SMS_SEGMENT_COST = Decimal("0.0079")
EMAIL_COST = Decimal("0.001")
NO_COST = Decimal("0")
# Like a real bulk API; the pipeline's batches of 200 go in one call.
MAX_BATCH_SIZE = 500
# Share of accepted messages whose receipt says UNDELIVERED.
UNDELIVERED_SHARE = 0.03
UNDELIVERED_CODES: dict[Channel, tuple[str, ...]] = {
    "sms": ("carrier_rejected", "handset_unreachable"),
    "email": ("mailbox_full", "recipient_rejected"),
}
WEBHOOK_TOLERANCE_SECONDS = 300
TIMESTAMP_HEADER = "X-Simulator-Timestamp"
SIGNATURE_HEADER = "X-Simulator-Signature"
RECEIPT_STATUSES = frozenset({"DELIVERED", "UNDELIVERED"})
# Seconds since the epoch, in ASCII digits: ten until the year 2286.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Scenario:
    code: str
    retryable: bool
    # Relative share among the failures of a channel the scenario applies to.
    weight: int
    channels: frozenset[str]
    message: str


_BOTH = frozenset({"sms", "email"})
SCENARIOS = (
    Scenario(
        code="invalid_number",
        retryable=False,
        weight=20,
        channels=frozenset({"sms"}),
        message="The number is not a reachable mobile number",
    ),
    Scenario(
        code="bounced",
        retryable=False,
        weight=20,
        channels=frozenset({"email"}),
        message="The mailbox does not exist",
    ),
    Scenario(
        code="unsubscribed",
        retryable=False,
        weight=15,
        channels=_BOTH,
        message="The recipient has unsubscribed",
    ),
    Scenario(
        code="spam_detected",
        retryable=False,
        weight=10,
        channels=_BOTH,
        message="The content was flagged as spam",
    ),
    Scenario(
        code="rate_limited",
        retryable=True,
        weight=25,
        channels=_BOTH,
        message="Too many requests; try again later",
    ),
    Scenario(
        code="carrier_timeout",
        retryable=True,
        weight=15,
        channels=_BOTH,
        message="The carrier did not answer in time",
    ),
    Scenario(
        code="service_error",
        retryable=True,
        weight=15,
        channels=_BOTH,
        message="Temporary error at the vendor",
    ),
)
# 48 bits of the hash per uniform draw: far finer than any share we configure.
_SCALE = float(1 << 48)
_MASK48 = (1 << 48) - 1
_SCENARIOS_BY_CODE = {scenario.code: scenario for scenario in SCENARIOS}
# message_cost and its text per SMS segment count, filled as counts come up.
_SMS_PRICES: dict[int, tuple[Decimal, str]] = {}
_EMAIL_PRICE = (EMAIL_COST, str(EMAIL_COST))


def _failure_table(channel: Channel) -> tuple[tuple[float, Scenario], ...]:
    """The channel's scenarios with the cumulative share each one ends at."""
    applicable = [scenario for scenario in SCENARIOS if channel in scenario.channels]
    total = sum(scenario.weight for scenario in applicable)
    table, bound = [], 0
    for scenario in applicable:
        bound += scenario.weight
        table.append((bound / total, scenario))
    return tuple(table)


_FAILURES = {"sms": _failure_table("sms"), "email": _failure_table("email")}


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
                results.append(_decode_result(message.send_id, answer))
            else:
                decision, result = _decided(
                    message, attempt=answer, rate=rate, due_ms=due_ms, seeded=seeded
                )
                results.append(result)
                undecided.append(index)
                decisions.append(decision)
        for index, earlier in zip(undecided, self.store.commit(decisions), strict=True):
            # Another call settled this send id in the meantime: its result stands.
            if earlier is not None:
                results[index] = _decode_result(messages[index].send_id, earlier)
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
        return [_decode_receipt(raw, times) for raw in popped]

    def sign(self, body: bytes, timestamp: int) -> str:
        """The hex HMAC-SHA256 of "<timestamp>.<body>" under the webhook secret."""
        signed = str(timestamp).encode() + b"." + body
        return hmac.new(self.webhook_secret, signed, hashlib.sha256).hexdigest()

    def webhook_callback(
        self, receipts: Sequence[Receipt], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed callback carrying these receipts."""
        return self._signed_callback(
            {
                "receipts": [
                    {
                        "vendor_ref": receipt.vendor_ref,
                        "status": receipt.status,
                        "error_code": receipt.error_code,
                        "occurred_at": receipt.occurred_at.isoformat(),
                    }
                    for receipt in receipts
                ]
            },
            timestamp=timestamp,
        )

    def _signed_callback(
        self, payload: dict, *, timestamp: int | None
    ) -> tuple[bytes, dict[str, str]]:
        """The JSON body and the timestamp and signature headers of a callback."""
        timestamp = int(self.clock()) if timestamp is None else timestamp
        body = json.dumps(payload).encode()
        headers = {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: self.sign(body, timestamp),
        }
        return body, headers

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        lowered = {name.lower(): value for name, value in headers.items()}
        timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        # Not str.isdigit, which takes "²" and any count of digits, both of which
        # int() refuses.
        if not _TIMESTAMP.fullmatch(timestamp) or not signature:
            return False
        now = self.clock() if now is None else now
        # A captured callback replayed later is refused, however well signed.
        if abs(now - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
            return False
        expected = self.sign(body, int(timestamp))
        return hmac.compare_digest(expected.encode(), signature.encode())

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        payload = read_json(body)
        if not isinstance(payload, dict) or "receipts" not in payload:
            raise InvalidPayload("not a receipts callback: no receipts")
        entries = payload["receipts"]
        if not isinstance(entries, list):
            raise InvalidPayload("receipts must be a list")
        return [_receipt(entry) for entry in entries]

    def inbound_callback(
        self, messages: Sequence[InboundMessage], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed callback forwarding people's replies."""
        return self._signed_callback(
            {
                "messages": [
                    {
                        "channel": message.channel,
                        "from": message.sender,
                        "body": message.body,
                        "received_at": message.received_at.isoformat(),
                    }
                    for message in messages
                ]
            },
            timestamp=timestamp,
        )

    def parse_inbound(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[InboundMessage]:
        payload = read_json(body)
        if not isinstance(payload, dict) or "messages" not in payload:
            raise InvalidPayload("not an inbound callback: no messages")
        entries = payload["messages"]
        if not isinstance(entries, list):
            raise InvalidPayload("messages must be a list")
        return [_inbound(entry) for entry in entries]


def _decided(
    message: OutboundMessage,
    *,
    attempt: int,
    rate: float,
    due_ms: int,
    seeded: "hashlib._Hash",
) -> tuple[Decision, SendResult]:
    """The outcome drawn from hash(seed, send id, attempt); `seeded` holds the seed.

    Per message in every vendor call, so kept lean: one hash, one integer for the
    three 48-bit draws, the cost looked up by segment count.
    """
    hashed = seeded.copy()
    hashed.update(f"{message.send_id}\x1f{attempt}".encode())
    digest = hashed.digest()
    draws = int.from_bytes(digest[:18])
    outcome = (draws >> 96) / _SCALE
    detail = ((draws >> 48) & _MASK48) / _SCALE
    if outcome < rate:
        vendor_ref = f"SIM{digest[18:].hex()}"
        if detail < UNDELIVERED_SHARE:
            codes = UNDELIVERED_CODES[message.channel]
            pick = (draws & _MASK48) / _SCALE
            status, code = "UNDELIVERED", codes[int(pick * len(codes))]
        else:
            status, code = "DELIVERED", ""
        cost, cost_text = _priced(message)
        decision = Decision(
            send_id=message.send_id,
            kind="accepted",
            error_code="",
            result=f"{vendor_ref}||{cost_text}",
            receipt_due_ms=due_ms,
            receipt=f"{due_ms}|{vendor_ref}|{status}|{code}|{message.send_id}",
        )
        return decision, SendResult(
            send_id=message.send_id,
            accepted=True,
            vendor_ref=vendor_ref,
            error_code=None,
            error_message="",
            retryable=False,
            cost=cost,
        )
    scenario = next(
        scenario for bound, scenario in _FAILURES[message.channel] if detail < bound
    )
    decision = Decision(
        send_id=message.send_id,
        kind="retryable" if scenario.retryable else "permanent",
        error_code=scenario.code,
        result="" if scenario.retryable else f"|{scenario.code}|0",
    )
    return decision, _failure(message.send_id, scenario)


def _priced(message: OutboundMessage) -> tuple[Decimal, str]:
    """message_cost and its text, from a table by segment count (no Decimal math)."""
    if message.channel != "sms":
        return _EMAIL_PRICE
    segments = sms_segments(message.body)
    price = _SMS_PRICES.get(segments)
    if price is None:
        cost = SMS_SEGMENT_COST * segments
        price = _SMS_PRICES[segments] = (cost, str(cost))
    return price


def message_cost(message: OutboundMessage) -> Decimal:
    """What the simulator charges for an accepted message."""
    if message.channel == "sms":
        return SMS_SEGMENT_COST * sms_segments(message.body)
    return EMAIL_COST


def _failure(send_id: str, scenario: Scenario) -> SendResult:
    return SendResult(
        send_id=send_id,
        accepted=False,
        vendor_ref=None,
        error_code=scenario.code,
        error_message=scenario.message,
        retryable=scenario.retryable,
        cost=NO_COST,
    )


def _decode_result(send_id: str, encoded: str) -> SendResult:
    """A final result as stored, "<vendor_ref>|<error_code>|<cost>", one name empty."""
    vendor_ref, error_code, cost = encoded.split("|")
    if not vendor_ref:
        return _failure(send_id, _SCENARIOS_BY_CODE[error_code])
    return SendResult(
        send_id=send_id,
        accepted=True,
        vendor_ref=vendor_ref,
        error_code=None,
        error_message="",
        retryable=False,
        cost=Decimal(cost),
    )


def _decode_receipt(
    encoded: str, times: dict[str, tuple[datetime, str]] | None = None
) -> Receipt:
    """A queued receipt, "<due ms>|<vendor_ref>|<status>|<error_code>|<send_id>".

    `times` caches each due time's datetime and ISO text across a batch.
    """
    due_ms, vendor_ref, status, error_code, send_id = encoded.split("|", 4)
    known = times.get(due_ms) if times is not None else None
    if known is None:
        occurred_at = datetime.fromtimestamp(int(due_ms) / 1000, UTC)
        known = (occurred_at, occurred_at.isoformat())
        if times is not None:
            times[due_ms] = known
    occurred_at, occurred_iso = known
    raw = {
        "vendor_ref": vendor_ref,
        "send_id": send_id,
        "status": status,
        "error_code": error_code or None,
        "occurred_at": occurred_iso,
    }
    return Receipt(
        vendor_ref=vendor_ref,
        status="DELIVERED" if status == "DELIVERED" else "UNDELIVERED",
        error_code=error_code or None,
        occurred_at=occurred_at,
        raw=raw,
    )


def _instant(entry: dict, key: str) -> datetime:
    """An ISO 8601 instant (UTC if it names no zone) that exists in UTC, as the
    database stores it."""
    try:
        moment = datetime.fromisoformat(entry[key])
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise InvalidPayload(f"{key} must be an ISO 8601 instant: {error}") from error
    return moment


def _text(value: object, *, name: str, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidPayload(f"{name} is longer than {max_length} characters")
    return value


def _receipt(entry: object) -> Receipt:
    if not isinstance(entry, dict):
        raise InvalidPayload("a receipt must be an object")
    vendor_ref = _text(
        entry.get("vendor_ref"),
        name="a receipt's vendor_ref",
        max_length=MAX_VENDOR_REF,
    )
    status, error_code = entry.get("status"), entry.get("error_code")
    if status not in RECEIPT_STATUSES:
        raise InvalidPayload(f"unknown receipt status {status!r}")
    if error_code is not None and not isinstance(error_code, str):
        raise InvalidPayload("error_code must be a string or null")
    if error_code and len(error_code) > MAX_ERROR_CODE:
        raise InvalidPayload(f"error_code is longer than {MAX_ERROR_CODE} characters")
    return Receipt(
        vendor_ref=vendor_ref,
        status=status,
        error_code=error_code,
        occurred_at=_instant(entry, "occurred_at"),
        raw=entry,
    )


def _inbound(entry: object) -> InboundMessage:
    if not isinstance(entry, dict):
        raise InvalidPayload("a message must be an object")
    channel, text = entry.get("channel"), entry.get("body")
    if channel not in ("sms", "email"):
        raise InvalidPayload(f"unknown channel {channel!r}")
    sender = _text(entry.get("from"), name="a message's 'from'", max_length=MAX_SENDER)
    if not isinstance(text, str):
        raise InvalidPayload("a message's body must be a string")
    if len(text) > MAX_INBOUND_BODY:
        raise InvalidPayload(f"a message's body is over {MAX_INBOUND_BODY} characters")
    return InboundMessage(
        channel=channel,
        sender=sender,
        body=text,
        received_at=_instant(entry, "received_at"),
        raw=entry,
    )


def _checked_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a success rate is between 0 and 1, got {rate}")
    return float(rate)
