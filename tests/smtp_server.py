"""Real SMTP servers on 127.0.0.1 (aiosmtpd) for the tests, well-behaved or misbehaving.

`SmtpServer` records every message it accepted, with its envelope, so a test compares the
server's own log with what the program claims. Misbehaviour is configured per server:
replies per recipient, a 421 after K messages (after the data, or at the next MAIL of a
connection that carried K), dropping the connection after K messages or after the data,
answering slowly, or echoing the credentials of a refused login.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Accepted:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Behaviour:
    """How the server misbehaves; the defaults accept everything."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    rcpt_reply_times: int = 0  # 0: always; N: only the first N times per address
    data_replies: dict[str, str] = field(default_factory=dict)  # address -> reply after DATA
    close_after_data: Callable[[int], bool] | None = None  # message count -> drop, no reply
    reply_421_after: int | None = None  # after this many accepted messages, 421 once
    close_every: int | None = None  # drop the connection after every N accepted messages
    data_delay: float = 0.0  # seconds before replying to the end of DATA
    slow_recipients: set[str] = field(default_factory=set)  # only these get data_delay
    mail_421_after: int | None = None  # the first connection to carry N: 421 to its next
    # MAIL, then it closes (once)
    echo_credentials: bool = False  # a refused AUTH quotes what it got, as some servers do


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.carried: dict[int, int] = {}  # messages accepted per connection (its session)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        after = self.server.behaviour.mail_421_after
        if after and self.carried.get(id(session), 0) >= after:
            with self.server.lock:
                first = not self.server.refused_421
                if first:
                    self.server.refused_421.append(time.monotonic())
            if first:
                asyncio.get_running_loop().call_soon(server.transport.close)
                return "421 4.7.0 Too many messages on this connection, slow down"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        behaviour = self.server.behaviour
        reply = behaviour.rcpt_replies.get(address.lower())
        if reply:
            with self.server.lock:
                seen = self.server.rcpt_refusals.get(address.lower(), 0)
                if not behaviour.rcpt_reply_times or seen < behaviour.rcpt_reply_times:
                    self.server.rcpt_refusals[address.lower()] = seen + 1
                    return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        behaviour = self.server.behaviour
        with self.server.lock:
            count = len(self.server.accepted)
            if behaviour.reply_421_after is not None and count >= behaviour.reply_421_after \
                    and not self.server.sent_421:
                self.server.sent_421 = True
                return "421 4.7.0 Too many messages, slow down"
        slow = not behaviour.slow_recipients or any(
            r.lower() in behaviour.slow_recipients for r in envelope.rcpt_tos)
        if behaviour.data_delay and slow:
            await asyncio.sleep(behaviour.data_delay)
        if behaviour.close_after_data and behaviour.close_after_data(count):
            with self.server.lock:  # the message arrived, but the client never hears so
                self.server.accepted.append(Accepted(envelope.mail_from,
                                                     list(envelope.rcpt_tos),
                                                     bytes(envelope.original_content or b"")))
            server.transport.close()
            return "250 never delivered"
        rcpt = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
        if rcpt in behaviour.data_replies:
            return behaviour.data_replies[rcpt]
        with self.server.lock:
            self.server.accepted.append(Accepted(envelope.mail_from, list(envelope.rcpt_tos),
                                                 bytes(envelope.original_content or b"")))
            count = len(self.server.accepted)
        self.carried[id(session)] = self.carried.get(id(session), 0) + 1
        if behaviour.close_every and count % behaviour.close_every == 0:
            # Between messages: the reply goes out first, then the connection closes.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Ok: queued"


class _CountingController(Controller):
    """Counts the client connections: aiosmtpd makes one SMTP protocol object for each."""

    def __init__(self, server: SmtpServer, *args: object, **kwargs: object) -> None:
        self._owner = server
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def factory(self) -> SMTP:
        with self._owner.lock:
            self._owner.connections += 1
        return super().factory()


class SmtpServer:
    """An aiosmtpd server in a thread; use as a context manager.

    `tls_context` offers STARTTLS; `implicit_tls` speaks TLS from the start instead;
    `auth_without` names AUTH mechanisms the server does not offer; `smtputf8` offers
    SMTPUTF8 (RFC 6531), for addresses with non-ASCII before the @.
    `connections` counts the client connections since the server started (the one aiosmtpd
    makes to itself while starting is not counted).
    """

    def __init__(self, behaviour: Behaviour | None = None, *,
                 tls_context: ssl.SSLContext | None = None, require_starttls: bool = False,
                 credentials: tuple[str, str] | None = None,
                 implicit_tls: ssl.SSLContext | None = None,
                 auth_without: tuple[str, ...] = (), smtputf8: bool = False) -> None:
        self.behaviour = behaviour or Behaviour()
        self.accepted: list[Accepted] = []
        self.rcpt_refusals: dict[str, int] = {}
        self.auth_attempts: list[str] = []
        self.sent_421 = False
        self.refused_421: list[float] = []  # when MAIL got a 421 (mail_421_after)
        self.connections = 0
        self.lock = threading.Lock()
        self.port = free_port()
        kwargs: dict[str, object] = {"decode_data": False, "enable_SMTPUTF8": smtputf8}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
        if implicit_tls is not None:  # TLS from the first byte, as on port 465 (smtps://)
            kwargs.update(ssl_context=implicit_tls)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticator(credentials), auth_required=True,
                          auth_require_tls=tls_context is not None,
                          auth_exclude_mechanism=list(auth_without))
        self.controller = _CountingController(self, _Handler(self), hostname="127.0.0.1",
                                              port=self.port, server_hostname="mx.test",
                                              **kwargs)

    def _authenticator(self, credentials: tuple[str, str]):  # type: ignore[no-untyped-def]
        def check(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user, password = auth_data.login.decode(), auth_data.password.decode()
            self.auth_attempts.append(user)
            ok = (user, password) == credentials
            if not ok and self.behaviour.echo_credentials:
                plain = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password)
                return AuthResult(success=False, handled=False,
                                  message=f"535 5.7.8 Authentication failed for {user} with "
                                          f"password {password} ({plain.decode()})")
            return AuthResult(success=ok, handled=False)

        return check

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        with self.lock:
            self.connections = 0  # start() connected once to check the server is up
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def recipients(self) -> list[str]:
        """Every accepted recipient address, once per accepted message."""
        with self.lock:
            return [r.lower() for message in self.accepted for r in message.rcpt_tos]
