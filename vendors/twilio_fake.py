"""A local fake of Twilio's Messages API, speaking its wire protocol on loopback.

Tests start it on 127.0.0.1 port 0 and point TWILIO_API_BASE at it, so the real
TwilioAdapter (HTTP client, auth, error classification) runs unchanged; the bench
runs it as its own process (`python -m vendors.twilio_fake --port 8999`). It answers
like Twilio (201 with a message resource, 400/401/429 with Twilio's error JSON),
lists messages by To and DateSent in Twilio's pages, and calls status callbacks back
signed with X-Twilio-Signature the way Twilio does.

As a test oracle it counts every request per send id (the StatusCallback URL's
`send_id` query) and every request for a send id it had already accepted
(`duplicate_sends`), and every one-second window's requests, so a test can prove no
message went twice and no second carried more than the account's limit.
"""

import argparse
import base64
import json
import queue
import random
import secrets
import signal
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from vendors.twilio import INVALID_NUMBER, OPTED_OUT, RATE_LIMITED, twilio_signature

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
# Phone numbers Twilio refuses as invalid 'To' numbers: anything not E.164.
_E164_DIGITS = range(8, 16)
# Twilio's default page of a list, and its largest.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Where the fake's own counters are read (not a Twilio endpoint).
STATS_PATH = "/_fake/stats"


@dataclass
class SentMessage:
    """What the fake accepted: a message resource, and where to call it back."""

    sid: str
    to: str
    sender: str
    send_id: str
    status_callback: str
    body: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "queued"

    def resource(self, account_sid: str) -> dict:
        """The message as Twilio's API shows it (a send's answer, a list's item)."""
        stamp = format_datetime(self.created)
        return {
            "sid": self.sid,
            "status": self.status,
            "to": self.to,
            "from": self.sender,
            "body": self.body,
            "num_segments": str(max(1, -(-len(self.body) // 153))),
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "account_sid": account_sid,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{self.sid}.json",
        }


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
    # Most requests the account takes in any one wall-clock second (429 and 20429
    # above it); 0 means no limit.
    rate_limit_per_second: int = 0
    # Call each accepted message's StatusCallback back (sent, then delivered or
    # undelivered) this long after accepting it; None calls nothing back.
    callback_delay_ms: int | None = None
    # Share of accepted messages whose final callback is undelivered with 30003.
    undelivered_rate: float = 0.0
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    # Numbers that replied STOP: Twilio refuses them with 21610 until START.
    opted_out: set[str] = field(default_factory=set)
    requests_by_send_id: Counter = field(default_factory=Counter)
    # Requests for a send id the fake had already accepted: second texts.
    duplicate_sends: int = 0
    rate_limited: int = 0
    # Requests (that passed auth) per wall-clock second, keyed by the epoch second.
    windows: Counter = field(default_factory=Counter)
    sent: list[SentMessage] = field(default_factory=list)
    callbacks_delivered: int = 0
    callbacks_failed: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._accepted: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._callbacks: queue.Queue[tuple[float, SentMessage] | None] = queue.Queue()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def max_window(self) -> int:
        """The most requests any one second carried."""
        with self._lock:
            return max(self.windows.values(), default=0)

    def start(self) -> "TwilioFake":
        fake = self

        class Handler(_Handler):
            twilio = fake

        class Server(ThreadingHTTPServer):
            # http.server's backlog of 5 refuses connections a pooled client opens.
            request_queue_size = 1024
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                """Quiet: a client that timed out and left is not the fake's error."""

        self._server = Server((self.host, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        if self.callback_delay_ms is not None:
            threading.Thread(target=self._call_back, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._callbacks.put(None)
            self._server.shutdown()
            self._server.server_close()

    def stats(self) -> dict:
        """The oracle's counts, as the stats endpoint serves them; the send phase runs
        from the first accepted message to the last."""
        with self._lock:
            stamps = [message.created for message in self.sent]
            phase = (max(stamps) - min(stamps)).total_seconds() if stamps else 0.0
            return {
                "requests": self.requests_by_send_id.total(),
                "accepted": len(self.sent),
                "duplicate_sends": self.duplicate_sends,
                "send_ids_requested_twice": sum(
                    1 for count in self.requests_by_send_id.values() if count > 1
                ),
                "rate_limited": self.rate_limited,
                "rate_limit_per_second": self.rate_limit_per_second,
                "max_window": max(self.windows.values(), default=0),
                "windows_over_limit": sum(
                    1
                    for count in self.windows.values()
                    if self.rate_limit_per_second and count > self.rate_limit_per_second
                ),
                "send_phase_seconds": round(phase, 3),
                "sends_per_s": round(len(self.sent) / phase, 1) if phase else 0.0,
                "callbacks_delivered": self.callbacks_delivered,
                "callbacks_failed": self.callbacks_failed,
            }

    def status_callback(
        self, message: SentMessage, status: str, *, error_code: str = ""
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL, form params and signed headers of a status callback."""
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "ErrorCode": error_code,
            "To": message.to,
            "From": message.sender,
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
        }
        signature = twilio_signature(self.auth_token, message.status_callback, params)
        return message.status_callback, params, {"X-Twilio-Signature": signature}

    def deliver_callback(
        self, message: SentMessage, status: str, *, error_code: str = ""
    ) -> int:
        """POST a signed status callback to its URL, as Twilio does; the HTTP status."""
        url, params, headers = self.status_callback(
            message, status, error_code=error_code
        )
        request = urllib.request.Request(
            url, data=urlencode(params).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def _call_back(self) -> None:
        """Post each accepted message's callbacks once its delay has passed."""
        while (item := self._callbacks.get()) is not None:
            due, message = item
            time.sleep(max(0.0, due - time.monotonic()))
            with self._lock:
                undelivered = self._random.random() < self.undelivered_rate
            final = "undelivered" if undelivered else "delivered"
            try:
                self.deliver_callback(message, "sent")
                self.deliver_callback(
                    message, final, error_code="30003" if undelivered else ""
                )
                message.status = final
                self.callbacks_delivered += 1
            except OSError:
                # Twilio gives up on a callback it cannot deliver; so does the fake.
                self.callbacks_failed += 1

    def _answer(self, path: str, auth: str, form: dict[str, str]) -> tuple[int, dict]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        send_id = parse_qs(urlsplit(form.get("StatusCallback", "")).query).get(
            "send_id", [""]
        )[0]
        with self._lock:
            self.requests_by_send_id[send_id] += 1
            if send_id and send_id in self._accepted:
                self.duplicate_sends += 1
        if path != self._messages_path:
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
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        message = SentMessage(
            sid="SM" + secrets.token_hex(16),
            to=to,
            sender=sender,
            send_id=send_id,
            status_callback=form.get("StatusCallback", ""),
            body=form["Body"],
        )
        with self._lock:
            self.sent.append(message)
            self._accepted.add(send_id)
        if self.callback_delay_ms is not None and message.status_callback:
            due = time.monotonic() + self.callback_delay_ms / 1000
            self._callbacks.put((due, message))
        resource = message.resource(self.account_sid)
        resource["messaging_service_sid"] = form.get("MessagingServiceSid")
        resource["from"] = form.get("From")
        return 201, resource

    def _list(self, path: str, auth: str, query: dict[str, str]) -> tuple[int, dict]:
        """Messages to `To` sent on the day `DateSent` (YYYY-MM-DD), newest first, in
        pages of `PageSize` numbered from 0 by `Page`, as Twilio lists them."""
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if path != self._messages_path:
            return 404, _error(20404, "The requested resource was not found", 404)
        if auth != _basic(self.account_sid, self.auth_token):
            return 401, _error(20003, "Authenticate", 401)
        try:
            size = min(int(query.get("PageSize", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
            page = int(query.get("Page", 0))
        except ValueError:
            return 400, _error(20001, "Invalid paging parameter", 400)
        to, day = query.get("To"), query.get("DateSent")
        with self._lock:
            found = [
                message
                for message in reversed(self.sent)
                if (to is None or message.to == to)
                and (day is None or message.created.date().isoformat() == day)
            ]
        items = found[page * size : (page + 1) * size]
        filters = {key: query[key] for key in ("To", "DateSent") if key in query}

        def page_uri(number: int) -> str:
            params = urlencode({**filters, "PageSize": size, "Page": number})
            return f"{self._messages_path}?{params}"

        more = (page + 1) * size < len(found)
        return 200, {
            "messages": [message.resource(self.account_sid) for message in items],
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + max(len(items) - 1, 0),
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if more else None,
            "previous_page_uri": page_uri(page - 1) if page else None,
        }

    @property
    def _messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def _over_rate_limit(self) -> bool:
        """Count the request in its second; whether that second is past the limit."""
        second = int(time.time())
        with self._lock:
            self.windows[second] += 1
            if (
                self.rate_limit_per_second
                and self.windows[second] > self.rate_limit_per_second
            ):
                self.rate_limited += 1
                return True
            return False


class _Handler(BaseHTTPRequestHandler):
    twilio: TwilioFake
    # Keep-alive, as Twilio serves it: a pooled client reuses its connections.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {name: values[0] for name, values in parse_qs(raw).items()}
        self._reply(
            *self.twilio._answer(
                urlsplit(self.path).path, self.headers.get("Authorization", ""), form
            )
        )

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        if parts.path == STATS_PATH:
            self._reply(200, self.twilio.stats())
            return
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self._reply(
            *self.twilio._list(parts.path, self.headers.get("Authorization", ""), query)
        )

    def _reply(self, status: int, payload: dict) -> None:
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


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until SIGTERM or SIGINT; print its address as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", default=TwilioFake.account_sid)
    parser.add_argument("--auth-token", default=TwilioFake.auth_token)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--rate", type=int, default=0, help="requests per second")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--callback-delay-ms", type=int, default=None)
    parser.add_argument("--undelivered-rate", type=float, default=0.0)
    options = parser.parse_args(argv)
    fake = TwilioFake(
        host=options.host,
        port=options.port,
        account_sid=options.account_sid,
        auth_token=options.auth_token,
        latency_ms=options.latency_ms,
        rate_limit_per_second=options.rate,
        failure_rate=options.failure_rate,
        callback_delay_ms=options.callback_delay_ms,
        undelivered_rate=options.undelivered_rate,
    ).start()
    print(json.dumps({"base_url": fake.base_url}), flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    fake.stop()


if __name__ == "__main__":
    main()
