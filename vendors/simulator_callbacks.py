"""The simulator's callbacks: signed webhook bodies carrying receipts and replies,
their signature check, and reading them back, refusing what the database cannot
store."""

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from vendors.base import (
    MAX_ERROR_CODE,
    MAX_INBOUND_BODY,
    MAX_SENDER,
    MAX_VENDOR_REF,
    InboundMessage,
    InvalidPayload,
    Receipt,
)
from vendors.payloads import read_json

WEBHOOK_TOLERANCE_SECONDS = 300
TIMESTAMP_HEADER = "X-Simulator-Timestamp"
SIGNATURE_HEADER = "X-Simulator-Signature"
RECEIPT_STATUSES = frozenset({"DELIVERED", "UNDELIVERED"})
# Seconds since the epoch, in ASCII digits: ten until the year 2286.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" under the webhook secret."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signed_callback(
    secret: bytes, payload: dict, *, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the timestamp and signature headers of a callback."""
    body = json.dumps(payload).encode()
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, body, timestamp),
    }
    return body, headers


def signature_valid(
    secret: bytes, *, body: bytes, headers: Mapping[str, str], now: float
) -> bool:
    """Whether the callback is signed under `secret` and recent at `now`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    # Not str.isdigit, which takes "²" and any count of digits, both of which
    # int() refuses.
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        return False
    # A captured callback replayed later is refused, however well signed.
    if abs(now - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
        return False
    expected = sign(secret, body, int(timestamp))
    return hmac.compare_digest(expected.encode(), signature.encode())


def receipts_payload(receipts: Sequence[Receipt]) -> dict:
    """A receipts callback's payload, as the vendor's webhook carries it."""
    return {
        "receipts": [
            {
                "vendor_ref": receipt.vendor_ref,
                "status": receipt.status,
                "error_code": receipt.error_code,
                "occurred_at": receipt.occurred_at.isoformat(),
            }
            for receipt in receipts
        ]
    }


def inbound_payload(messages: Sequence[InboundMessage]) -> dict:
    """An inbound callback's payload: people's replies, as the vendor forwards them."""
    return {
        "messages": [
            {
                "channel": message.channel,
                "from": message.sender,
                "body": message.body,
                "received_at": message.received_at.isoformat(),
                **({"id": message.message_id} if message.message_id else {}),
                **({"to": message.to} if message.to else {}),
            }
            for message in messages
        ]
    }


def parse_receipts(body: bytes) -> list[Receipt]:
    return [_receipt(entry) for entry in _entries(body, "receipts", "a receipts")]


def parse_inbound(body: bytes) -> list[InboundMessage]:
    return [_inbound(entry) for entry in _entries(body, "messages", "an inbound")]


def _entries(body: bytes, key: str, kind: str) -> list:
    """The list a callback body carries under `key`; `kind` names the callback."""
    payload = read_json(body)
    if not isinstance(payload, dict) or key not in payload:
        raise InvalidPayload(f"not {kind} callback: no {key}")
    entries = payload[key]
    if not isinstance(entries, list):
        raise InvalidPayload(f"{key} must be a list")
    return entries


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
    message_id, to = entry.get("id"), entry.get("to")
    return InboundMessage(
        channel=channel,
        sender=sender,
        body=text,
        received_at=_instant(entry, "received_at"),
        raw=entry,
        message_id=(
            _text(message_id, name="a message's id", max_length=MAX_VENDOR_REF)
            if message_id is not None
            else ""
        ),
        to=(
            _text(to, name="a message's 'to'", max_length=MAX_SENDER)
            if to is not None
            else ""
        ),
    )
