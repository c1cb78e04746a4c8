"""A vendor whose answers a test dictates, where the simulator leaves it to chance."""

from collections.abc import Callable
from decimal import Decimal

from vendors.base import OutboundMessage, SendResult, VendorAdapter

Script = Callable[[OutboundMessage], SendResult]


def accept(message: OutboundMessage) -> SendResult:
    return SendResult(
        send_id=message.send_id,
        accepted=True,
        vendor_ref=f"ref-{message.send_id}",
        error_code=None,
        error_message="",
        retryable=False,
        cost=Decimal("0.0079"),
    )


def fail(code: str, *, retryable: bool) -> Script:
    def script(message: OutboundMessage) -> SendResult:
        return SendResult(
            send_id=message.send_id,
            accepted=False,
            vendor_ref=None,
            error_code=code,
            error_message=f"{code} (scripted)",
            retryable=retryable,
            cost=Decimal("0"),
        )

    return script


class ScriptedVendor(VendorAdapter):
    name = "scripted"
    max_batch_size = 1000
    # A stand-in for the simulator, whose dedupe on send id it assumes.
    idempotent_sends = True

    def __init__(self, script: Script = accept, *, raises: Exception | None = None):
        self.script = script
        self.raises = raises
        self.calls: list[list[OutboundMessage]] = []

    def send_batch(self, messages):
        self.calls.append(list(messages))
        if self.raises is not None:
            raise self.raises
        return [self.script(message) for message in messages]

    def fetch_receipts(self, *, limit):
        return []

    def parse_receipts(self, *, body, headers):
        return []

    def verify_signature(self, *, body, headers, now=None):
        return False
