"""Email through an SMTP relay of the organization's own, on Django's SMTP backend.

A batch is sent over one connection (a new one every MESSAGES_PER_CONNECTION, as
relays may cap messages a session), a message at a time, so each gets its own
answer: 2xx accepted, 4xx retryable, 5xx final. A relay sends no receipts: an
accepted message stays sent. Our send id names the message (its vendor ref) and
travels in the X-CRM-Send-ID header, which a relay's bounce quotes back.
"""

import contextlib
import smtplib
from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import make_msgid

from vendors.base import (
    InvalidPayload,
    OutboundMessage,
    Receipt,
    SendResult,
    VendorAdapter,
    VendorUnavailable,
)

SEND_ID_HEADER = "X-CRM-Send-ID"
CONNECTION_ERROR = "connection_error"
INVALID_ADDRESS = "invalid_address"
# Messages a connection carries before the next: relays may cap messages a session,
# and a connection lost mid-batch leaves at most this many to retry.
MESSAGES_PER_CONNECTION = 20


class SmtpAdapter(VendorAdapter):
    name = "smtp"
    max_batch_size = 200

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        use_ssl: bool | None = None,
        from_email: str | None = None,
        timeout: float | None = None,
        messages_per_connection: int = MESSAGES_PER_CONNECTION,
    ) -> None:
        self.options = {
            "host": host or settings.EMAIL_HOST,
            "port": port or settings.EMAIL_PORT,
            "username": settings.EMAIL_HOST_USER if username is None else username,
            "password": settings.EMAIL_HOST_PASSWORD if password is None else password,
            "use_tls": settings.EMAIL_USE_TLS if use_tls is None else use_tls,
            "use_ssl": settings.EMAIL_USE_SSL if use_ssl is None else use_ssl,
            "timeout": timeout or settings.EMAIL_TIMEOUT,
        }
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.domain = self.from_email.rpartition("@")[2] or "localhost"
        self.messages_per_connection = messages_per_connection

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), self.messages_per_connection):
            part = messages[start : start + self.messages_per_connection]
            try:
                results += self._send_connected(part)
            except VendorUnavailable:
                if not results:
                    raise
                # Some have their answer: the rest are retried message by message.
                rest = messages[len(results) :]
                return results + [_failed(m, CONNECTION_ERROR) for m in rest]
        return results

    def _send_connected(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send over one connection; VendorUnavailable if it fails before any
        message has its answer."""
        backend = EmailBackend(fail_silently=False, **self.options)
        try:
            backend.open()
        except (OSError, smtplib.SMTPException) as error:
            raise VendorUnavailable(
                f"SMTP relay unreachable ({type(error).__name__})"
            ) from error
        results: list[SendResult] = []
        try:
            for message in messages:
                try:
                    backend.send_messages([self._email(message)])
                except smtplib.SMTPResponseException as error:
                    results.append(_refused(message, error.smtp_code))
                except smtplib.SMTPRecipientsRefused as error:
                    [(code, _)] = error.recipients.values()
                    results.append(_refused(message, code))
                except (OSError, smtplib.SMTPException) as error:
                    if not results:
                        raise VendorUnavailable(
                            f"SMTP relay lost ({type(error).__name__})"
                        ) from error
                    rest = messages[len(results) :]
                    return results + [_failed(m, CONNECTION_ERROR) for m in rest]
                except ValueError:
                    # Django cannot write the address into an envelope.
                    results.append(_failed(message, INVALID_ADDRESS, retryable=False))
                else:
                    results.append(_accepted(message))
        finally:
            # Every message has its answer already; a QUIT lost changes nothing.
            with contextlib.suppress(OSError, smtplib.SMTPException):
                backend.close()
        return results

    def _email(self, message: OutboundMessage) -> EmailMessage:
        headers = {
            "Message-ID": make_msgid(domain=self.domain),
            SEND_ID_HEADER: message.send_id,
            **dict(message.headers),
        }
        return EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=self.from_email,
            to=[message.to],
            headers=headers,
        )

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        raise InvalidPayload("an SMTP relay sends no receipts")

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        """Never: a relay calls nothing back, so no callback is one of its."""
        return False


def _accepted(message: OutboundMessage) -> SendResult:
    return SendResult(
        send_id=message.send_id,
        accepted=True,
        vendor_ref=message.send_id,
        error_code=None,
        error_message="",
        retryable=False,
        cost=Decimal(0),
    )


def _refused(message: OutboundMessage, code: int) -> SendResult:
    """A message the relay refused: final on a 5xx reply, retryable on a 4xx."""
    return _failed(message, f"smtp_{code}", retryable=not 500 <= code < 600)


def _failed(
    message: OutboundMessage, code: str, *, retryable: bool = True
) -> SendResult:
    return SendResult(
        send_id=message.send_id,
        accepted=False,
        vendor_ref=None,
        error_code=code,
        error_message="",
        retryable=retryable,
        cost=Decimal(0),
    )
