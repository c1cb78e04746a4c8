"""What the simulator decides for each message: accepted (with its receipt to come)
or failed by a scenario, what it costs, and the encoded results and receipts the
store keeps.

Every outcome is drawn from a hash of (seed, send id, attempt number of that send id),
not from a shared random stream, so a seeded run gives the same outcomes however the
workers happen to interleave.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from vendors.base import Channel, OutboundMessage, Receipt, SendResult
from vendors.simulator_store import Decision
from vendors.sms import sms_segments

SMS_SEGMENT_COST = Decimal("0.0079")
EMAIL_COST = Decimal("0.001")
NO_COST = Decimal("0")
# Share of accepted messages whose receipt says UNDELIVERED.
UNDELIVERED_SHARE = 0.03
UNDELIVERED_CODES: dict[Channel, tuple[str, ...]] = {
    "sms": ("carrier_rejected", "handset_unreachable"),
    "email": ("mailbox_full", "recipient_rejected"),
}


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
# The cost and its text per SMS segment count, filled as counts come up.
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


def decided(
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
    """The message's cost and its text, from a table by segment count (no Decimal
    math)."""
    if message.channel != "sms":
        return _EMAIL_PRICE
    segments = sms_segments(message.body)
    price = _SMS_PRICES.get(segments)
    if price is None:
        cost = SMS_SEGMENT_COST * segments
        price = _SMS_PRICES[segments] = (cost, str(cost))
    return price


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


def decode_result(send_id: str, encoded: str) -> SendResult:
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


def decode_receipt(
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
