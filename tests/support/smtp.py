"""A local SMTP server on loopback (aiosmtpd) that the SMTP adapter delivers to."""

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME, PASSWORD = "relay-user", "relay-password"


@dataclass
class Received:
    """A message the server accepted, with the connection it came on."""

    peer: tuple
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """Accepts mail for any address but those in `refuse` (address -> SMTP reply)."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    logins: int = 0
    # Hang up on the client after accepting this many messages (a relay lost).
    hang_up_after: int | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.hang_up_after is not None and len(self.received) >= self.hang_up_after:
            server.transport.close()
            return "421 4.3.2 Service shutting down"
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(
            Received(session.peer, envelope.mail_from, list(envelope.rcpt_tos), message)
        )
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        valid = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USERNAME, PASSWORD)
        if valid:
            self.logins += 1
        return AuthResult(success=valid)

    @property
    def connections(self) -> int:
        return len({received.peer for received in self.received})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(server: SmtpServer) -> Controller:
    """Serve on a free loopback port, requiring a login (plain auth, no TLS)."""
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=server.authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    return controller
