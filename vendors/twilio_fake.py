"""A local fake of Twilio's Messages API, speaking its wire protocol on loopback.

Tests start it on 127.0.0.1 port 0 and point TWILIO_API_BASE at it, so the real
TwilioAdapter (HTTP client, auth, error classification) runs unchanged. It answers
like Twilio (201 with a message resource, 400/401/429 with Twilio's error JSON),
counts every request per send id (the StatusCallback URL's `send_id` query), and
calls status callbacks back signed with X-Twilio-Signature the way Twilio does.
"""

import base64
import json
import random
import secrets
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from vendors.twilio import INVALID_NUMBER, OPTED_OUT, RATE_LIMITED, twilio_signature

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
# Phone numbers Twilio refuses as invalid 'To' numbers: anything not E.164.
_E164_DIGITS = range(8, 16)


@dataclass
class SentMessage:
    """What the fake accepted: enough to call its status callback back."""

    sid: str
    to: str
    sender: str
    send_id: str
    status_callback: str


@dataclass
class TwilioFake:
    """Twilio's Messages API for one account; `start()` serves it on loopback."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "f" * 32
    latency_ms: int = 0
    # Share of valid requests answered with a transient 30001 (queue overflow).
    failure_rate: float = 0.0
    # Share of valid requests answered 503 with code 20503.
    server_error_rate: float = 0.0
    # Most requests the account takes in any one second; 0 means no limit.
    rate_limit_per_second: int = 0
    seed: int = 0
    # Numbers that replied STOP: Twilio refuses them with 21610 until START.
    opted_out: set[str] = field(default_factory=set)
    requests_by_send_id: Counter = field(default_factory=Counter)
    sent: list[SentMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._recent: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "TwilioFake":
        fake = self

        class Handler(_Handler):
            twilio = fake

        class Server(ThreadingHTTPServer):
            # http.server's backlog of 5 refuses connections a pooled client opens.
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def status_callback(
        self, message: SentMessage, status: str, *, error_code: str = ""
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL, form params and signed headers of a status callback."""
        params = {
            "MessageSid": message.sid,
            "MessageStatus": status,
            "ErrorCode": error_code,
            "To": message.to,
            "From": message.sender,
            "AccountSid": self.account_sid,
        }
        signature = twilio_signature(self.auth_token, message.status_callback, params)
        return message.status_callback, params, {"X-Twilio-Signature": signature}

    def deliver_callback(self, message: SentMessage, status: str) -> int:
        """POST a signed status callback to its URL, as Twilio does; the HTTP status."""
        url, params, headers = self.status_callback(message, status)
        request = urllib.request.Request(
            url, data=urlencode(params).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def _answer(self, path: str, auth: str, form: dict[str, str]) -> tuple[int, dict]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        send_id = parse_qs(urlsplit(form.get("StatusCallback", "")).query).get(
            "send_id", [""]
        )[0]
        with self._lock:
            self.requests_by_send_id[send_id] += 1
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if path != expected:
            return 404, _error(20404, "The requested resource was not found", 404)
        if auth != _basic(self.account_sid, self.auth_token):
            return 401, _error(20003, "Authenticate", 401)
        if self._over_rate_limit():
            return 429, _error(RATE_LIMITED, "Too Many Requests", 429)
        to = form.get("To", "")
        if not (
            to.startswith("+") and to[1:].isdigit() and len(to) - 1 in _E164_DIGITS
        ):
            message = f"The 'To' number {to} is not a valid phone number."
            return 400, _error(INVALID_NUMBER, message, 400)
        if to in self.opted_out:
            message = "Attempt to send to unsubscribed recipient"
            return 400, _error(int(OPTED_OUT), message, 400)
        if not form.get("Body"):
            return 400, _error(21602, "Message body is required.", 400)
        with self._lock:
            draw = self._random.random()
        if draw < self.server_error_rate:
            return 503, _error(20503, "Service Unavailable", 503)
        if draw < self.server_error_rate + self.failure_rate:
            return 400, _error(30001, "Queue overflow", 400)
        sid = "SM" + secrets.token_hex(16)
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        with self._lock:
            self.sent.append(
                SentMessage(sid, to, sender, send_id, form.get("StatusCallback", ""))
            )
        return 201, {
            "sid": sid,
            "status": "queued",
            "to": to,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "num_segments": str(max(1, -(-len(form["Body"]) // 153))),
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "account_sid": self.account_sid,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _over_rate_limit(self) -> bool:
        if not self.rate_limit_per_second:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit_per_second:
                return True
            self._recent.append(now)
            return False


class _Handler(BaseHTTPRequestHandler):
    twilio: TwilioFake

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {name: values[0] for name, values in parse_qs(raw).items()}
        status, payload = self.twilio._answer(
            self.path, self.headers.get("Authorization", ""), form
        )
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Silent: request lines carry phone numbers."""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": MORE_INFO.format(code=code),
        "status": status,
    }
