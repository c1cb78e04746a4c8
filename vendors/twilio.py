"""Twilio SMS: the Messages API for sends, signed status callbacks and inbound SMS.

Twilio takes one message a request, so a batch is many requests in flight: a thread
pool of TWILIO_MAX_IN_FLIGHT over one urllib3 connection pool (half the CPU a
request of a requests Session, and less memory than asyncio with httpx:
docs/vendors.md), each request paced by the account's shared rate limit. Our send
id travels in the
StatusCallback URL's query. Callbacks are form-encoded and signed with
X-Twilio-Signature: base64 HMAC-SHA1 under the auth token over the full URL followed
by every POST parameter, sorted by name, as name then value.
"""

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

import urllib3
from django.conf import settings
from django.utils import timezone

from vendors.base import (
    IN_DOUBT,
    MAX_ERROR_CODE,
    MAX_INBOUND_BODY,
    MAX_SENDER,
    MAX_VENDOR_REF,
    AccountUnusable,
    InboundMessage,
    InFlightMessage,
    InvalidPayload,
    OutboundMessage,
    Receipt,
    SendResult,
    VendorAdapter,
    VendorUnavailable,
)
from vendors.rate_limit import RateLimiter, RateLimitUnavailable, get_rate_limiter

if TYPE_CHECKING:
    from vendors.models import VendorAccount

RECEIPTS_PATH = "/api/webhooks/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"

# Twilio error codes (https://www.twilio.com/docs/api/errors) as our error codes.
RATE_LIMITED = 20429
INVALID_NUMBER = 21211
# The person replied STOP: Twilio refuses every message to them until START.
OPTED_OUT = "21610"
# Worth another attempt later: rate limits, queue overflow, carrier or network
# trouble that passes (as are Twilio's 5xx answers and connection errors).
RETRYABLE_CODES = frozenset({"20429", "30001", "30002", "30008", "30010"})
# Everything else is final; among them 21211/21614 (not a mobile number),
# 30006 (landline), 30007 (carrier filtered) and OPTED_OUT.

# Twilio's final statuses; queued, accepted, sending and sent are on the way.
RECEIPT_STATUSES = {
    "delivered": "DELIVERED",
    "undelivered": "UNDELIVERED",
    "failed": "UNDELIVERED",
}
CONNECTION_ERROR = "connection_error"
RATE_LIMIT_UNAVAILABLE = "rate_limit_unavailable"
# A lookup's match may be stamped this much before our claim: the vendor's clock
# and ours differ.
CLOCK_SKEW = timedelta(minutes=2)
LOOKUP_PAGE_SIZE = 1000
# Connecting is quick or the API is down: a request never sent may be retried.
CONNECT_TIMEOUT = 5.0
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature of a POST to `url` carrying these form parameters."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioAdapter(VendorAdapter):
    """Twilio's Messages API: no idempotency key, a lookup by number and day, and a
    per-account rate shared by every worker."""

    name = "twilio"
    max_batch_size = 100
    idempotent_sends = False
    can_lookup = True
    suppressing_codes = MappingProxyType({OPTED_OUT: "stop_keyword"})

    def __init__(
        self,
        *,
        api_base: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        public_url: str | None = None,
        max_in_flight: int | None = None,
        timeout: float | None = None,
        rate_per_second: float | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.api_base = (api_base or settings.TWILIO_API_BASE).rstrip("/")
        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.from_number = from_number or settings.TWILIO_FROM_NUMBER
        self.messaging_service_sid = (
            messaging_service_sid or settings.TWILIO_MESSAGING_SERVICE_SID
        )
        self.public_url = (public_url or settings.TWILIO_STATUS_CALLBACK_URL).rstrip(
            "/"
        )
        self.max_in_flight = max_in_flight or settings.TWILIO_MAX_IN_FLIGHT
        self.timeout = timeout or settings.TWILIO_TIMEOUT_SECONDS
        self.rate_per_second = (
            rate_per_second
            if rate_per_second is not None
            else settings.TWILIO_RATE_PER_SECOND
        )
        self.rate_key = f"twilio:{self.account_sid}"
        self.rate_limiter = rate_limiter or get_rate_limiter()
        self.messages_url = (
            f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        )
        # Blocking: a thread waits for a free connection instead of opening more.
        self.http = urllib3.PoolManager(
            num_pools=2,
            maxsize=self.max_in_flight,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=self.timeout),
        )
        self.headers = urllib3.make_headers(
            basic_auth=f"{self.account_sid}:{self.auth_token}"
        )
        self.executor = ThreadPoolExecutor(
            max_workers=self.max_in_flight, thread_name_prefix="twilio"
        )

    @classmethod
    def from_account(
        cls, account: "VendorAccount", secrets: Mapping[str, str]
    ) -> "TwilioAdapter":
        """An organization's Twilio account: its SID and auth token, and its sender
        (a number as From, or an MG... messaging service SID), never the settings'.
        With an API key pair, requests authenticate with the key; the auth token
        still verifies the account's callbacks."""
        if not account.account_id or not secrets.get("auth_token"):
            # The constructor would fall back to the settings' account.
            raise AccountUnusable("a Twilio account needs its account SID and token")
        sender = account.sender
        service = sender if sender.startswith("MG") else ""
        adapter = cls(
            account_sid=account.account_id,
            auth_token=secrets["auth_token"],
            from_number=sender if not service else None,
            messaging_service_sid=service or None,
        )
        # The constructor falls back to the settings' sender: an account has one.
        adapter.from_number = "" if service else sender
        adapter.messaging_service_sid = service
        if secrets.get("api_key_sid") and secrets.get("api_key_secret"):
            adapter.session.auth = (secrets["api_key_sid"], secrets["api_key_secret"])
        return adapter

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return list(self.executor.map(self._send_one, messages))

    def _send_one(self, message: OutboundMessage) -> SendResult:
        form = {
            "To": message.to,
            "Body": message.body,
            "StatusCallback": self.status_callback_url(message.send_id),
        }
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        try:
            self.rate_limiter.wait(self.rate_key, self.rate_per_second)
        except RateLimitUnavailable as error:
            # Nothing left: another attempt later, when the limiter answers.
            return _failed(message, RATE_LIMIT_UNAVAILABLE, str(error), passing=True)
        try:
            response = self.http.request(
                "POST",
                self.messages_url,
                body=urlencode(form),
                headers={**self.headers, **FORM_HEADERS},
            )
        except urllib3.exceptions.HTTPError as error:
            if _never_sent(error):
                # Not even connected: another attempt later, never a drop.
                return _failed(
                    message, CONNECTION_ERROR, type(error).__name__, passing=True
                )
            # Twilio may have the message and we have no answer: not sendable again
            # until a lookup says it never arrived.
            return _in_doubt(message, type(error).__name__)
        try:
            payload = json.loads(response.data)
        except ValueError:
            if response.status < 300:
                return _in_doubt(message, "unreadable answer")
            payload = {}
        if response.status == 201:
            return SendResult(
                send_id=message.send_id,
                accepted=True,
                vendor_ref=payload["sid"],
                error_code=None,
                error_message="",
                retryable=False,
                cost=Decimal(payload.get("price") or 0).copy_abs(),
            )
        if response.status == 429:
            with contextlib.suppress(RateLimitUnavailable):
                self.rate_limiter.slow_down(self.rate_key)
        code = str(payload.get("code") or f"http_{response.status}")
        # Twilio's own message can quote the number: its documentation link cannot.
        text = str(payload.get("more_info", ""))[:200]
        return _failed(message, code, text, passing=response.status >= 500)

    def lookup(
        self, messages: Sequence[InFlightMessage]
    ) -> dict[str, SendResult | None]:
        """Find each message among those Twilio lists for its number and days.

        Twilio keeps neither our send id nor the StatusCallback, so a message is
        matched on what it does return: the same `to`, the same body, created no
        earlier than our claim (less CLOCK_SKEW), and not a ref we already hold for
        another of our messages. One such message is ours; none means the request
        never arrived; more than one cannot be told apart, so the send id is left
        out (the caller records it as unknown).
        """
        found = list(self.executor.map(self._lookup_one, messages))
        return {
            message.send_id: result
            for message, (known, result) in zip(messages, found, strict=True)
            if known
        }

    def _lookup_one(self, message: InFlightMessage) -> tuple[bool, SendResult | None]:
        since = message.since - CLOCK_SKEW
        matches = [
            item
            for item in self._listed(message.to, since)
            if item.get("body") == message.body
            and item.get("sid") not in message.known_refs
            and _created(item) >= since
        ]
        if len(matches) > 1:
            return False, None
        if not matches:
            return True, None
        return True, SendResult(
            send_id=message.send_id,
            accepted=True,
            vendor_ref=matches[0]["sid"],
            error_code=None,
            error_message="",
            retryable=False,
            cost=Decimal(matches[0].get("price") or 0).copy_abs(),
        )

    def _listed(self, to: str, since: datetime) -> list[dict]:
        """Every message Twilio lists to `to` sent from `since`'s day to today."""
        day, today = since.astimezone(UTC).date(), datetime.now(UTC).date()
        items: list[dict] = []
        while day <= today:
            query = {
                "To": to,
                "DateSent": day.isoformat(),
                "PageSize": LOOKUP_PAGE_SIZE,
            }
            url: str | None = f"{self.messages_url}?{urlencode(query)}"
            while url:
                try:
                    response = self.http.request("GET", url, headers=self.headers)
                    page = json.loads(response.data)
                except (urllib3.exceptions.HTTPError, ValueError) as error:
                    raise VendorUnavailable(
                        f"lookup failed: {type(error).__name__}"
                    ) from error
                if response.status != 200:
                    raise VendorUnavailable(f"lookup failed: HTTP {response.status}")
                items.extend(page.get("messages") or [])
                following = page.get("next_page_uri")
                url = f"{self.api_base}{following}" if following else None
            day += timedelta(days=1)
        return items

    def status_callback_url(self, send_id: str) -> str:
        return f"{self.public_url}{RECEIPTS_PATH}?{urlencode({'send_id': send_id})}"

    def verify_request(
        self, *, path: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        signature = headers.get(SIGNATURE_HEADER, "")
        # Without a token anyone could sign: nothing is verified until one is set.
        if not signature or not self.auth_token:
            return False
        expected = twilio_signature(
            self.auth_token, self.public_url + path, _form(body)
        )
        return hmac.compare_digest(signature, expected)

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        """Never enough alone: Twilio signs the URL too (see verify_request)."""
        return False

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        form = _form(body)
        sid = _field(form, "MessageSid", MAX_VENDOR_REF)
        status = RECEIPT_STATUSES.get(_field(form, "MessageStatus", 40))
        if status is None:
            return []
        error_code = form.get("ErrorCode", "")[:MAX_ERROR_CODE] or None
        return [
            Receipt(
                vendor_ref=sid,
                status=status,
                error_code=error_code if status == "UNDELIVERED" else None,
                occurred_at=timezone.now(),
            )
        ]

    def parse_inbound(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[InboundMessage]:
        form = _form(body)
        sid = _field(form, "MessageSid", MAX_VENDOR_REF)
        return [
            InboundMessage(
                channel="sms",
                sender=_field(form, "From", MAX_SENDER),
                body=form.get("Body", "")[:MAX_INBOUND_BODY],
                received_at=timezone.now(),
                raw={"MessageSid": sid},
                message_id=sid,
                to=form.get("To", "")[:MAX_SENDER],
                to_service=form.get("MessagingServiceSid", "")[:MAX_SENDER],
            )
        ]


def _failed(
    message: OutboundMessage, code: str, text: str, *, passing: bool = False
) -> SendResult:
    """A refused message; retryable when its code or `passing` says it may pass."""
    return SendResult(
        send_id=message.send_id,
        accepted=False,
        vendor_ref=None,
        error_code=code,
        error_message=text,
        retryable=passing or code in RETRYABLE_CODES,
        cost=Decimal(0),
    )


def _never_sent(error: urllib3.exceptions.HTTPError) -> bool:
    """Whether the request failed before a connection carried it to Twilio."""
    return isinstance(
        error,
        urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError,
    )


def _in_doubt(message: OutboundMessage, text: str) -> SendResult:
    """A request that may have reached Twilio: neither sent nor to be sent again."""
    return SendResult(
        send_id=message.send_id,
        accepted=False,
        vendor_ref=None,
        error_code=IN_DOUBT,
        error_message=text,
        retryable=False,
        cost=Decimal(0),
    )


def _created(item: dict) -> datetime:
    try:
        return parsedate_to_datetime(item["date_created"])
    except (KeyError, TypeError, ValueError):
        # Undated: it could be ours, so it counts as a match.
        return datetime.max.replace(tzinfo=UTC)


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise InvalidPayload("the body is not form-encoded UTF-8") from error
    return {name: values[0] for name, values in parsed.items()}


def _field(form: Mapping[str, str], name: str, longest: int) -> str:
    value = form.get(name, "")
    if not value or len(value) > longest:
        raise InvalidPayload(f"{name} is missing or longer than {longest} characters")
    return value
