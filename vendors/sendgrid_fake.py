"""A local fake of SendGrid's v3 Mail Send API and Signed Event Webhook, on loopback.

Tests start it on 127.0.0.1 port 0 and point ANYMAIL["SENDGRID_API_URL"] at it, so
the real SendGridAdapter (anymail's payload, HTTP client, error mapping) runs
unchanged. It takes `POST /v3/mail/send` as SendGrid does (Bearer auth, the JSON
shape checked, at most 1,000 personalizations, 10,000 bytes of substitutions each),
answers 202 with X-Message-Id or SendGrid's error JSON (400, 401, 429, 5xx), counts
the requests per send id (the personalizations' custom args) and posts event
webhooks signed the way SendGrid signs them: ECDSA P-256 with SHA-256 over the
timestamp header followed by the body, base64 DER, under a key of its own whose
public half (`public_key`) our side is configured with.
"""

import base64
import json
import random
import re
import secrets
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vendors.sendgrid import (
    MAX_PERSONALIZATIONS,
    MAX_SUBSTITUTION_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)

SEND_PATH = "/v3/mail/send"
# What SendGrid takes as an address here: something@domain.tld, no spaces.
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class SentEmail:
    """One personalization the fake accepted, as its recipient would read it."""

    sg_message_id: str
    send_id: str
    to: str
    from_email: str
    subject: str
    body: str
    headers: dict[str, str]
    custom_args: dict[str, str]


@dataclass
class SendGridFake:
    """SendGrid's Mail Send API for one API key; `start()` serves it on loopback."""

    api_key: str = "SG.fake-key"
    latency_ms: int = 0
    # Share of requests answered 503 (SendGrid's passing trouble).
    server_error_rate: float = 0.0
    # The next this many valid requests are answered 503, whatever the rate.
    server_errors_next: int = 0
    # Most requests the key may make in any one second; 0 means no limit.
    rate_limit_per_second: int = 0
    seed: int = 0
    requests_by_send_id: Counter = field(default_factory=Counter)
    # Personalizations in each request answered 202, in order.
    accepted_requests: list[int] = field(default_factory=list)
    sent: list[SentEmail] = field(default_factory=list)
    # Requests carrying a send id already accepted: a second email to a person.
    duplicate_sends: int = 0
    rate_limited: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._recent: deque[float] = deque()
        self._accepted: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._private_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def api_url(self) -> str:
        """The base URL to configure as ANYMAIL["SENDGRID_API_URL"]."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v3/"

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 DER of the public key."""
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return base64.b64encode(der).decode()

    def start(self) -> "SendGridFake":
        fake = self

        class Handler(_Handler):
            sendgrid = fake

        class Server(ThreadingHTTPServer):
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- Event webhook --------------------------------------------------------

    def event(self, sent: SentEmail, kind: str, **fields: Any) -> dict[str, Any]:
        """An event as SendGrid posts it: its fields, then the custom args on top.

        `kind` is SendGrid's event name (delivered, bounce, dropped, deferred,
        spamreport, unsubscribe...); `fields` add or override (type="blocked").
        """
        event = {
            "email": sent.to,
            "timestamp": int(time.time()),
            "smtp-id": f"<{sent.sg_message_id.split('.')[0]}@fake.sendgrid>",
            "event": kind,
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": sent.sg_message_id,
            **_EVENT_FIELDS.get(kind, {}),
            **fields,
        }
        return {**event, **sent.custom_args}

    def sign(self, body: bytes, timestamp: str) -> str:
        """The signature header's value for a body sent at `timestamp`."""
        signature = self._private_key.sign(
            timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
        return base64.b64encode(signature).decode()

    def signed(
        self, events: list[dict[str, Any]], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed event webhook carrying `events`."""
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(body, stamp),
            TIMESTAMP_HEADER: stamp,
        }
        return body, headers

    def post_events(self, url: str, events: list[dict[str, Any]]) -> int:
        """POST a signed event webhook to `url`, as SendGrid does; the HTTP status."""
        body, headers = self.signed(events)
        request = urllib.request.Request(url, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    # --- Mail Send ------------------------------------------------------------

    def _answer(
        self, path: str, auth: str, raw: bytes
    ) -> tuple[int, dict[str, str], dict | None]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if path != SEND_PATH:
            return 404, {}, _errors(None, "Not Found")
        try:
            payload = json.loads(raw)
        except ValueError:
            return 400, {}, _errors(None, "Bad Request")
        send_ids = _send_ids(payload)
        with self._lock:
            self.requests_by_send_id.update(send_ids)
        if not secrets.compare_digest(auth, f"Bearer {self.api_key}"):
            message = "The provided authorization grant is invalid, expired, or revoked"
            return 401, {}, _errors(None, message)
        if self._over_rate_limit():
            return (
                429,
                _rate_headers(self.rate_limit_per_second),
                _errors(None, "too many requests"),
            )
        problem = _invalid(payload)
        if problem:
            return 400, {}, _errors(*problem)
        with self._lock:
            draw = self._random.random()
            forced = self.server_errors_next > 0
            self.server_errors_next -= forced
        if forced or draw < self.server_error_rate:
            return 503, {}, _errors(None, "Service Unavailable")
        x_message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            self.duplicate_sends += sum(1 for s in send_ids if s in self._accepted)
            self._accepted.update(send_ids)
            self.accepted_requests.append(len(payload["personalizations"]))
            self.sent += _rendered(payload, x_message_id)
        return 202, {"X-Message-Id": x_message_id}, None

    def _over_rate_limit(self) -> bool:
        if not self.rate_limit_per_second:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit_per_second:
                self.rate_limited += 1
                return True
            self._recent.append(now)
            return False


# Fields SendGrid adds to each kind of event, with typical values.
_EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 2.0.0 OK", "tls": 1},
    "bounce": {
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "bounce_classification": "Invalid Address",
    },
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "deferred": {"response": "421 4.7.0 Try again later", "attempt": "1"},
    "processed": {},
    "spamreport": {},
    "unsubscribe": {},
}


def _send_ids(payload: Any) -> list[str]:
    try:
        return [
            str((p.get("custom_args") or {}).get("send_id", ""))
            for p in payload["personalizations"]
        ]
    except (TypeError, KeyError, AttributeError):
        return []


def _invalid(payload: Any) -> tuple[str | None, str] | None:
    """(field, message) of the first thing SendGrid would refuse; None if valid."""
    if not isinstance(payload, dict):
        return None, "Bad Request"
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "personalizations", (
            "The personalizations field is required and must have at least one"
            " personalization."
        )
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return "personalizations", (
            f"The personalizations field must have at most {MAX_PERSONALIZATIONS}"
            " items."
        )
    sender = payload.get("from")
    if not isinstance(sender, dict) or not _ADDRESS.match(str(sender.get("email"))):
        return "from", "The from object must be provided for every email send."
    content = payload.get("content")
    if not payload.get("template_id") and not (
        isinstance(content, list)
        and content
        and all(
            isinstance(c, dict) and c.get("type") and c.get("value") for c in content
        )
    ):
        return "content", (
            "Unless a valid template_id is provided, the content parameter is required."
        )
    for index, personalization in enumerate(personalizations):
        problem = _invalid_personalization(index, personalization, payload)
        if problem:
            return problem
    return None


def _invalid_personalization(
    index: int, personalization: Any, payload: dict
) -> tuple[str, str] | None:
    where = f"personalizations.{index}"
    if not isinstance(personalization, dict):
        return where, "Bad Request"
    to = personalization.get("to")
    if not isinstance(to, list) or not to:
        return f"{where}.to", "The to array is required for all personalization objects"
    for number, recipient in enumerate(to):
        if not isinstance(recipient, dict) or not _ADDRESS.match(
            str(recipient.get("email"))
        ):
            return f"{where}.to.{number}.email", "Does not contain a valid address."
    if not (payload.get("subject") or personalization.get("subject")):
        return "subject", "The subject is required."
    substitutions = personalization.get("substitutions") or {}
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in substitutions.items())
    if size > MAX_SUBSTITUTION_BYTES:
        return f"{where}.substitutions", (
            f"The total size of substitutions may not exceed {MAX_SUBSTITUTION_BYTES}"
            " bytes per personalization."
        )
    for name, value in (personalization.get("custom_args") or {}).items():
        if not isinstance(value, str):
            return f"{where}.custom_args.{name}", "Custom args must be strings."
    return None


def _rendered(payload: dict, x_message_id: str) -> list[SentEmail]:
    """Each personalization as its recipient gets it, substitutions applied."""
    text = next(
        (c["value"] for c in payload.get("content", []) if c["type"] == "text/plain"),
        "",
    )
    emails = []
    for index, personalization in enumerate(payload["personalizations"]):
        substitutions = personalization.get("substitutions") or {}

        def substitute(value: str, substitutions=substitutions) -> str:
            for key, replacement in substitutions.items():
                value = value.replace(key, str(replacement))
            return value

        custom_args = {
            **payload.get("custom_args", {}),
            **personalization.get("custom_args", {}),
        }
        headers = {**payload.get("headers", {}), **personalization.get("headers", {})}
        emails.append(
            SentEmail(
                sg_message_id=f"{x_message_id}.filter0001.{index}.0",
                send_id=custom_args.get("send_id", ""),
                to=personalization["to"][0]["email"],
                from_email=payload["from"]["email"],
                subject=substitute(
                    personalization.get("subject") or payload.get("subject", "")
                ),
                body=substitute(text),
                headers={name: substitute(v) for name, v in headers.items()},
                custom_args=custom_args,
            )
        )
    return emails


def _rate_headers(limit: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(time.time()) + 1),
    }


def _errors(field_name: str | None, message: str) -> dict:
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


class _Handler(BaseHTTPRequestHandler):
    sendgrid: SendGridFake

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        status, headers, payload = self.sendgrid._answer(
            self.path, self.headers.get("Authorization", ""), raw
        )
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Silent: request lines could carry addresses."""
