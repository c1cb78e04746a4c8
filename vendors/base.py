"""The vendor adapter interface: what a messaging vendor does for the pipeline."""

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

if TYPE_CHECKING:
    from vendors.models import VendorAccount

Channel = Literal["sms", "email"]
ReceiptStatus = Literal["DELIVERED", "UNDELIVERED"]


class VendorError(Exception):
    """A vendor refused or could not handle a request."""


class VendorUnavailable(VendorError):
    """The whole call failed for a passing reason (5xx, timeout, connection).

    Nothing in the batch is known to have been sent; the caller retries the batch
    later, and the vendor's idempotency on send_id makes that retry safe.
    """


class AccountUnusable(VendorError):
    """An adapter cannot be built for a vendor account: an id or a secret it needs
    is missing, or the adapter does not send for accounts at all."""


class InvalidPayload(VendorError):
    """A callback body is not what the vendor sends; answer it with a 400."""


# The most characters the pipeline stores of a callback's fields (their columns'
# lengths): an adapter refuses a callback with a longer one as InvalidPayload.
MAX_VENDOR_REF = 120
MAX_ERROR_CODE = 64
MAX_SENDER = 254
# A reply's text: far above an SMS (1,600 characters at most) or a STOP by email.
MAX_INBOUND_BODY = 10_000


# The records made once per message (one message, one result, one receipt) are
# NamedTuples: immutable, and a third of a frozen dataclass's cost to make, six
# times a message on the hot path (docs/performance.md).
class OutboundMessage(NamedTuple):
    send_id: str
    channel: Channel
    to: str
    body: str
    subject: str = ""
    # Extra email headers (name, value), in order: a marketing email's
    # List-Unsubscribe pair. An email adapter passes them on; SMS has none.
    headers: tuple[tuple[str, str], ...] = ()


class SendResult(NamedTuple):
    send_id: str
    accepted: bool
    vendor_ref: str | None
    error_code: str | None
    error_message: str
    retryable: bool
    cost: Decimal


class Receipt(NamedTuple):
    vendor_ref: str
    status: ReceiptStatus
    error_code: str | None
    occurred_at: datetime
    raw: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class InboundMessage:
    """A message a person sent to us: a reply to an SMS or an email."""

    channel: Channel
    sender: str
    body: str
    received_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)
    # The vendor's id of the message, when it gives one: a replay carries the same.
    message_id: str = ""
    # The sender identity it was sent to (a number, an address): it names the
    # organization the message belongs to. "" when the vendor does not say.
    to: str = ""
    # The messaging service the receiving number belongs to, when the vendor says
    # (Twilio's MessagingServiceSid): an organization may be known by it instead.
    to_service: str = ""


class VendorAdapter(abc.ABC):
    """Turns batches of messages into vendor calls and callbacks into receipts."""

    name: ClassVar[str]
    # The most messages the vendor takes in one call; send_batch splits above it.
    max_batch_size: int
    # The vendor's limit for the whole fleet in messages per second (None: none
    # known), and the name of the bucket counting it: an account's adapter has its
    # account's rate and `account:<id>`, so accounts never share a bucket.
    rate_per_second: int | None = None
    rate_key: str = ""
    # The vendor's error codes (in a send result or a receipt) that say the address
    # must not be messaged again on that channel, each with the suppression reason
    # it stands for (crm.Suppression.Reason's values: "stop_keyword", "hard_bounce",
    # "complaint"). The pipeline suppresses the address and fails the message.
    suppressing_codes: ClassVar[Mapping[str, str]] = MappingProxyType({})

    @classmethod
    def from_account(
        cls, account: "VendorAccount", secrets: Mapping[str, str]
    ) -> "VendorAdapter":
        """The adapter sending as an organization's account, given its decrypted
        secrets: its sender and credentials, never the settings'. A vendor that
        does not say how cannot send for an account."""
        raise AccountUnusable(f"{cls.name} does not send as a vendor account")

    @property
    def receipt_delay(self) -> float:
        """Seconds after a send before fetch_receipts can have its receipts: when a
        poll for them is worth making. Vendors that only call back have none."""
        return 0.0

    @abc.abstractmethod
    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send the messages: one result per message, in the same order.

        Per-message failures are results; VendorUnavailable means the whole call
        failed and nothing can be said about any message in it.
        """

    def fetch_receipts(self, *, limit: int) -> list[Receipt]:
        """Take up to `limit` receipts the vendor has ready on a queue, if it has one.

        Vendors that only call back through webhooks have none to give.
        """
        return []

    @abc.abstractmethod
    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        """Read the receipts in a webhook callback; InvalidPayload if malformed."""

    @abc.abstractmethod
    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        """Whether a webhook callback was signed by the vendor, recently."""

    def verify_request(
        self, *, path: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        """Whether a webhook request to `path` (and query) was signed by the vendor.

        Vendors that sign the body alone check verify_signature; those that sign the
        URL too (Twilio) join `path` to the public URL they were given.
        """
        return self.verify_signature(body=body, headers=headers)

    def parse_inbound(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[InboundMessage]:
        """Read the messages in an inbound callback; InvalidPayload if malformed.

        A vendor that does not forward replies has none: any body is refused.
        """
        raise InvalidPayload(f"{self.name} does not forward inbound messages")
