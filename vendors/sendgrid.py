"""SendGrid email through django-anymail: batched sends and signed event webhooks.

A batch goes out as few v3 `mail/send` requests as SendGrid allows: one
personalization per message, up to 1,000 a request. Our bodies are rendered per
message already, so the request's subject and content are two substitution tags and
each personalization substitutes its own message (anymail's `merge_data`), carries
our send id in its custom args (`merge_metadata`) and its own headers
(`merge_headers`, List-Unsubscribe). Events come back to our webhook with the
custom args, so each finds its message by send id, which is also the message's
vendor ref: SendGrid's X-Message-Id names a request, not a message.

Event webhooks are verified as SendGrid signs them (ECDSA P-256 / SHA-256 over the
timestamp header followed by the body; anymail checks it) and refused when their
timestamp is older than SENDGRID_WEBHOOK_TOLERANCE_SECONDS, against replays.
Anymail normalizes the events (AnymailTrackingEvent), which become receipts and
suppressions here.
"""

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import SimpleNamespace

from anymail.backends.sendgrid import EmailBackend as AnymailSendGridBackend
from anymail.exceptions import (
    AnymailError,
    AnymailInsecureWebhookWarning,
    AnymailInvalidAddress,
    AnymailNotSupportedWarning,
    AnymailRequestsAPIError,
    AnymailWebhookValidationFailure,
)
from anymail.message import AnymailMessage
from anymail.signals import AnymailTrackingEvent, EventType
from anymail.utils import parse_single_address
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from requests.structures import CaseInsensitiveDict

from vendors.base import (
    MAX_ERROR_CODE,
    MAX_VENDOR_REF,
    InvalidPayload,
    OutboundMessage,
    Receipt,
    SendResult,
    SuppressionNotice,
    VendorAdapter,
    VendorEvents,
    VendorUnavailable,
)

DEFAULT_API_URL = "https://api.sendgrid.com/v3/"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid's limits on one v3 mail/send request.
MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
# The request's subject and content: each personalization substitutes its message.
MERGE_FIELD_FORMAT = "%crm_{}%"
SUBJECT_FIELD = "subject"
BODY_FIELD = "body"
SEND_ID_ARG = "send_id"
CONNECTION_ERROR = "connection_error"
INVALID_ADDRESS = "invalid_address"
# Error codes of failed messages: a hard bounce, a block (a soft bounce SendGrid
# does not retry), a drop with its reason (dropped_bounced, dropped_unsubscribed...).
HARD_BOUNCE = "bounce"
BLOCKED = "blocked"
# What each normalized event suppresses the address for (crm Suppression.Reason).
SUPPRESSING_EVENTS = {
    EventType.COMPLAINED: "complaint",
    EventType.UNSUBSCRIBED: "unsubscribe_link",
}


class SendGridAdapter(VendorAdapter):
    name = "sendgrid"
    max_batch_size = MAX_PERSONALIZATIONS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_url: str | None = None,
        from_email: str | None = None,
        verification_key: str | None = None,
        tolerance_seconds: int | None = None,
        timeout: float | None = None,
    ) -> None:
        anymail = getattr(settings, "ANYMAIL", {})
        self.api_key = api_key or anymail.get("SENDGRID_API_KEY", "")
        self.api_url = api_url or anymail.get("SENDGRID_API_URL", DEFAULT_API_URL)
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        try:
            parse_single_address(self.from_email)
        except AnymailInvalidAddress as error:
            raise ImproperlyConfigured(
                f"SendGrid's from address {self.from_email!r} is not an address"
            ) from error
        self.verification_key = (
            verification_key or settings.SENDGRID_WEBHOOK_VERIFICATION_KEY
        )
        self.tolerance_seconds = (
            tolerance_seconds or settings.SENDGRID_WEBHOOK_TOLERANCE_SECONDS
        )
        with warnings.catch_warnings():
            # Anymail no longer tests SendGrid against a live account; our fake
            # speaks its documented wire protocol, and tests/vendors pins both.
            warnings.simplefilter("ignore", AnymailNotSupportedWarning)
            # Our signature check stands in for anymail's basic auth.
            warnings.simplefilter("ignore", AnymailInsecureWebhookWarning)
            self.backend = AnymailSendGridBackend(
                api_key=self.api_key,
                api_url=self.api_url,
                timeout=timeout or settings.SENDGRID_TIMEOUT_SECONDS,
                merge_field_format=MERGE_FIELD_FORMAT,
                # Our send id names each message: no uuid of anymail's per message.
                generate_message_id=False,
                fail_silently=False,
            )
            self.webhook = SendGridTrackingWebhookView(
                tracking_webhook_verification_key=self.verification_key or None,
                webhook_secret=[],
            )
        # One pooled session for the adapter's life: a connection reused by every
        # request of every batch.
        self.backend.open()

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        unavailable = []
        for request in _requests(messages):
            answer = self._post(request)
            if answer is None:
                unavailable.append(request)
            else:
                results.update((result.send_id, result) for result in answer)
        if unavailable and not results:
            raise VendorUnavailable("SendGrid did not answer any request of the batch")
        for request in unavailable:
            # Some requests were answered: the rest are retried message by message.
            for message in request:
                results[message.send_id] = _failed(
                    message, CONNECTION_ERROR, "", passing=True
                )
        return [results[message.send_id] for message in messages]

    def _post(
        self, request: list[OutboundMessage], *, checked: bool = False
    ) -> list[SendResult] | None:
        """Send one request's messages; None when SendGrid did not answer (5xx,
        timeout, connection), so nothing is known of them. `checked`: each address
        was parsed on its own already."""
        try:
            self.backend.send_messages([_email(request, from_email=self.from_email)])
        except AnymailInvalidAddress:
            if checked:
                return [_failed(m, INVALID_ADDRESS, "") for m in request]
            # Addresses are checked when leads are saved, so this is rare: only
            # then is each address parsed on its own (anymail parses every one).
            return self._post_valid(request)
        except AnymailRequestsAPIError as error:
            status = error.response.status_code if error.response is not None else 0
            if status == 0 or status >= 500:
                return None
            # Every message of the request was refused; only 429 may pass.
            code, text = f"http_{status}", _error_text(error)
            return [
                _failed(message, code, text, passing=status == 429)
                for message in request
            ]
        except AnymailError as error:
            # A message anymail cannot build: its type only, its text quotes it.
            return [_failed(m, type(error).__name__, "") for m in request]
        return [
            SendResult(
                send_id=message.send_id,
                accepted=True,
                vendor_ref=message.send_id,
                error_code=None,
                error_message="",
                retryable=False,
                cost=Decimal(0),
            )
            for message in request
        ]

    def _post_valid(self, request: list[OutboundMessage]) -> list[SendResult] | None:
        """Fail the messages whose address anymail refuses; send the others."""
        invalid, valid = [], []
        for message in request:
            try:
                parse_single_address(message.to)
            except AnymailInvalidAddress:
                invalid.append(_failed(message, INVALID_ADDRESS, ""))
            else:
                valid.append(message)
        answer = self._post(valid, checked=True) if valid else []
        return None if answer is None else invalid + answer

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        # Without a key anyone could post events: nothing is verified until one is set.
        if not self.verification_key:
            return False
        headers = CaseInsensitiveDict(headers)
        try:
            sent_at = int(headers.get(TIMESTAMP_HEADER, ""))
        except ValueError:
            return False
        now = time.time() if now is None else now
        if abs(now - sent_at) > self.tolerance_seconds:
            return False
        request = SimpleNamespace(headers=headers, body=body)
        try:
            self.webhook.validate_request(request)
        except AnymailWebhookValidationFailure:
            return False
        return True

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        return self.parse_events(body=body, headers=headers).receipts

    def parse_events(self, *, body: bytes, headers: Mapping[str, str]) -> VendorEvents:
        """Receipts and suppressions of our messages' events; others are skipped
        (the webhook gets every event of the SendGrid account)."""
        events = VendorEvents(receipts=[], suppressions=[])
        for event in self._tracking_events(body):
            send_id = _text(event.metadata.get(SEND_ID_ARG), MAX_VENDOR_REF)
            if not send_id:
                continue
            receipt = _receipt(send_id, event)
            if receipt is not None:
                events.receipts.append(receipt)
            reason = _suppression_reason(event)
            if reason:
                events.suppressions.append(SuppressionNotice(send_id, reason))
        return events

    def _tracking_events(self, body: bytes) -> list[AnymailTrackingEvent]:
        try:
            posted = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidPayload("the body is not JSON") from error
        if not isinstance(posted, list) or not all(
            isinstance(event, dict) and isinstance(event.get("event"), str)
            for event in posted
        ):
            raise InvalidPayload("the body is not a list of SendGrid events")
        try:
            return [self.webhook.esp_to_anymail_event(event) for event in posted]
        except (TypeError, ValueError, OverflowError, OSError, AttributeError) as error:
            # A timestamp or reason of the wrong type or out of range.
            raise InvalidPayload(
                "an event has a field SendGrid does not send"
            ) from error


def _requests(messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
    """The messages as requests: up to MAX_PERSONALIZATIONS each, each address once
    in a request (anymail keys a personalization by address), and a message whose
    subject and body outgrow SendGrid's substitution limit alone in its own."""
    requests: list[list[OutboundMessage]] = []
    open_requests: list[tuple[list[OutboundMessage], set[str]]] = []
    for message in messages:
        if _substitution_bytes(message) > MAX_SUBSTITUTION_BYTES:
            requests.append([message])
            continue
        address = message.to.lower()
        for request, addresses in open_requests:
            if address not in addresses and len(request) < MAX_PERSONALIZATIONS:
                break
        else:
            request, addresses = [], set()
            open_requests.append((request, addresses))
            requests.append(request)
        request.append(message)
        addresses.add(address)
    return requests


def _substitution_bytes(message: OutboundMessage) -> int:
    fields = (SUBJECT_FIELD, message.subject, BODY_FIELD, message.body)
    return sum(len(MERGE_FIELD_FORMAT.format(f).encode()) for f in fields[::2]) + sum(
        len(value.encode()) for value in fields[1::2]
    )


def _email(request: list[OutboundMessage], *, from_email: str) -> AnymailMessage:
    """One anymail message for a request: a personalization per message."""
    if len(request) == 1 and _substitution_bytes(request[0]) > MAX_SUBSTITUTION_BYTES:
        [message] = request
        return AnymailMessage(
            subject=message.subject,
            body=message.body,
            from_email=from_email,
            to=[message.to],
            merge_metadata={message.to: {SEND_ID_ARG: message.send_id}},
            merge_headers={message.to: _headers(message)},
        )
    subject, body = (MERGE_FIELD_FORMAT.format(f) for f in (SUBJECT_FIELD, BODY_FIELD))
    return AnymailMessage(
        subject=subject,
        body=body,
        from_email=from_email,
        to=[message.to for message in request],
        merge_data={
            m.to: {SUBJECT_FIELD: m.subject, BODY_FIELD: m.body} for m in request
        },
        merge_metadata={m.to: {SEND_ID_ARG: m.send_id} for m in request},
        merge_headers={m.to: _headers(m) for m in request},
    )


def _headers(message: OutboundMessage) -> dict[str, str]:
    """The message's own headers (List-Unsubscribe), when it has any."""
    return dict(message.headers)


def _error_text(error: AnymailRequestsAPIError) -> str:
    """SendGrid's first error, by field and message: neither quotes an address."""
    try:
        [first, *_] = error.response.json()["errors"]
        return f"{first.get('field') or ''}: {first.get('message') or ''}"[:200]
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def _receipt(send_id: str, event: AnymailTrackingEvent) -> Receipt | None:
    """The receipt an event makes: delivered, or undelivered with its code; None
    for the events that do not end a message (processed, deferred, opens...)."""
    occurred_at = event.timestamp or timezone.now()
    raw = {
        "event": str(event.event_type),
        "sg_event_id": _text(event.event_id, MAX_VENDOR_REF),
    }
    if event.event_type == EventType.DELIVERED:
        return Receipt(send_id, "DELIVERED", None, occurred_at, raw)
    if event.event_type == EventType.BOUNCED:
        code = BLOCKED if event.esp_event.get("type") == BLOCKED else HARD_BOUNCE
    elif event.event_type == EventType.REJECTED:
        code = f"dropped_{event.reject_reason}"[:MAX_ERROR_CODE]
    else:
        return None
    return Receipt(send_id, "UNDELIVERED", code, occurred_at, raw)


def _text(value: object, longest: int) -> str:
    """`value` if it is text the database can store (no NUL, no lone surrogate)
    of at most `longest` characters; "" otherwise."""
    if not isinstance(value, str) or len(value) > longest or "\x00" in value:
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value


def _suppression_reason(event: AnymailTrackingEvent) -> str:
    if event.event_type == EventType.BOUNCED and event.esp_event.get("type") != BLOCKED:
        return "hard_bounce"
    return SUPPRESSING_EVENTS.get(event.event_type, "")


def _failed(
    message: OutboundMessage, code: str, text: str, *, passing: bool = False
) -> SendResult:
    return SendResult(
        send_id=message.send_id,
        accepted=False,
        vendor_ref=None,
        error_code=code,
        error_message=text,
        retryable=passing,
        cost=Decimal(0),
    )
