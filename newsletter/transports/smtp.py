"""`smtp://[user@]host[:port][?tls=starttls|off]` and `smtps://[user@]host[:port]`.

One connection carries many messages, each with its own envelope sender when a return path
is set (`bounces+TOKEN@domain`, see inbound/). TLS certificates and host names are verified
(`ssl.create_default_context`, optionally with a private CA file); when STARTTLS is asked
for and the server does not offer it, nothing is sent. The password comes only from
NEWSLETTER_SMTP_PASSWORD, and never appears in a message or the ledger: every server reply
is shown with the password (and the base64 forms AUTH sends it in) replaced by ***, since
some servers echo what they were sent (see smtpauth.py).

The message data is pre-encoded with CRLF line ends and no line starting with '.', so it
is written to the socket as is instead of through `smtplib.SMTP.data`, which rescans every
message with two regular expressions.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import SplitResult, parse_qs, unquote

from ..config import Settings
from ..envelope import Personalised
from ..errors import AuthenticationError, ConfigError, TransportError, TransportUnavailable
from .base import Result, Status, Transport, is_loopback
from .smtpauth import PASSWORD_VARIABLE, login, secret_forms

_UNSAFE_IN_COMMAND = re.compile(r"[\x00-\x20<>\x7f]")
HARD_BOUNCE_CODES = {550, 551, 553}  # mailbox unknown, not local, name not allowed
EXPECTED = ((250,), (250, 251), (354,))  # the good replies to MAIL, RCPT and DATA


class SmtpTransport(Transport):
    schemes = ("smtp", "smtps")

    def __init__(self, host: str, port: int, *, sender: str, implicit_tls: bool = False,
                 starttls: bool = True, username: str | None = None,
                 password: str | None = None, ca_file: str | None = None,
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.implicit_tls, self.starttls = implicit_tls, starttls
        self.username, self._password = username, password
        self.ca_file, self.timeout = ca_file, timeout
        self._smtp: smtplib.SMTP | None = None
        self._secrets = secret_forms(username or "", password or "")

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> SmtpTransport:
        shown = f"{url.scheme}://{url.hostname or ''}"
        if url.password is not None:
            raise ConfigError(f"transport {shown}: do not put the password in the URL; "
                              f"set {PASSWORD_VARIABLE} in the environment instead")
        if not url.hostname:
            raise ConfigError(f"transport {shown}: expected a host, as in "
                              "smtp://user@smtp.example.org:587")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        unknown = set(query) - {"tls", "ca_file"}
        if unknown:
            raise ConfigError(f"transport {shown}: unknown option(s) {', '.join(sorted(unknown))};"
                              " expected tls=starttls|off or ca_file=PATH")
        implicit = url.scheme == "smtps"
        tls = query.get("tls", "implicit" if implicit else "starttls")
        if tls not in ("starttls", "off", "implicit") or (implicit and tls == "off"):
            raise ConfigError(f"transport {shown}: tls={tls!r}; expected starttls or off")
        username = unquote(url.username) if url.username else None
        password = settings.env.get(PASSWORD_VARIABLE)
        if username and not password:
            raise ConfigError(f"transport {shown}: user {username!r} needs a password; set "
                              f"{PASSWORD_VARIABLE} in the environment")
        if username and tls == "off" and not is_loopback(url.hostname):
            raise ConfigError(f"transport {shown}: refusing to send a password without TLS "
                              "to a host that is not this machine")
        ca_file = query.get("ca_file") or settings.ca_file
        return cls(url.hostname, url.port or (465 if implicit else 587),
                   sender=settings.sender_address, implicit_tls=implicit,
                   starttls=tls == "starttls", username=username, password=password,
                   ca_file=str(settings.path(ca_file)) if ca_file else None,
                   timeout=settings.timeout)

    @property
    def description(self) -> str:
        user = f"{self.username}@" if self.username else ""
        mode = "TLS" if self.implicit_tls else ("STARTTLS" if self.starttls else "no TLS")
        return f"SMTP {user}{self.host}:{self.port} ({mode})"

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> smtplib.SMTP:
        """Connect, secure and log in; fatal problems raise, passing ones are Unavailable."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca_file {self.ca_file}: cannot be read ({exc})") from None
        smtp: smtplib.SMTP | None = None
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            # Commands are small writes answered one by one: send them without waiting.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.starttls and not self.implicit_tls:
                if not smtp.has_extn("starttls"):
                    raise TransportError(f"{self._where()} does not offer STARTTLS; refusing to "
                                         "send in plaintext (use ?tls=off only for a local "
                                         "relay)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                login(smtp, self.username, self._password or "", self._where())
            return smtp
        except ssl.SSLCertVerificationError as exc:
            _abort(smtp)
            raise TransportError(f"{self._where()}: TLS certificate not trusted "
                                 f"({exc.verify_message}); nothing was sent. For a private "
                                 "relay, set ca_file") from None
        except smtplib.SMTPAuthenticationError as exc:
            _abort(smtp)
            reply = self._reply(exc.smtp_code, exc.smtp_error)
            raise AuthenticationError(
                f"{self._where()} refused the login of {self.username!r}: {reply}; check the "
                f"user in the transport URL and {PASSWORD_VARIABLE}", reply,
                provider=self._where(), status=exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError:
            _abort(smtp)
            raise TransportError(f"{self._where()} does not offer AUTH; remove the user from "
                                 "the transport URL or use another port") from None
        except TransportError:
            _abort(smtp)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            _abort(smtp)
            raise TransportUnavailable(f"{self._where()}: cannot connect "
                                       f"({self._describe(exc)})",
                                       throttled=_code(exc) == 421, provider=self._where(),
                                       status=_code(exc)) from None

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        results: list[Result] = []
        for message in batch:
            try:
                results.append(self._send_reconnecting(message))
            except TransportUnavailable as exc:
                if not results:
                    raise
                results.extend(Result(Status.DEFERRED, str(exc)) for _ in batch[len(results):])
                break
        return results

    def _send_reconnecting(self, message: Personalised) -> Result:
        """Send over the open connection; if the server closed it while idle, over a new one.

        Servers close connections after N messages or an idle timeout (often with a 421 that
        the next command reads); nothing of the message was sent then, so it goes again once.
        A 421 still asked us to slow down: the result says so whatever the second try gives.
        """
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            return self._send_one(self._smtp, message)
        except _ClosedBeforeMail as closed:
            if not reused:
                return closed.result
            first = closed.result
        try:
            self._smtp = self._connect()
            result = self._send_one(self._smtp, message)
        except _ClosedBeforeMail as again:
            result = again.result
        except TransportUnavailable as exc:
            exc.throttled = exc.throttled or first.throttled
            raise
        if not first.throttled:
            return result
        return replace(result, throttled=True,
                       reply=f"{first.reply}; then on a new connection: {result.reply}")

    def _send_one(self, smtp: smtplib.SMTP, message: Personalised) -> Result:
        """MAIL, RCPT and DATA in one write when the server pipelines (RFC 2920), then the
        data and its final dot in another: two round trips a message instead of four. The
        wire bytes are built (and DKIM-signed) while the server answers the envelope."""
        recipient = message.recipient.email
        if _UNSAFE_IN_COMMAND.search(recipient):
            return Result(Status.FAILED, f"address {recipient!r} cannot be used in SMTP")
        utf8 = message.needs_smtputf8
        if utf8 and not smtp.has_extn("smtputf8"):
            return Result(Status.FAILED, f"address {recipient!r} has non-ASCII before the @, "
                                         f"which needs SMTPUTF8 (RFC 6531); {self._where()} "
                                         "does not offer it")
        # With [bounces] return_path, each message has its own envelope sender (VERP), so
        # that a bounce names its delivery; MAIL FROM is not covered by DKIM or shown.
        sender = message.return_path or self.sender
        pipelined = smtp.has_extn("pipelining")
        commands = [f"MAIL FROM:<{sender}>{' SMTPUTF8' if utf8 else ''}\r\n",
                    f"RCPT TO:<{recipient}>\r\n", "DATA\r\n"]
        encoding = "utf-8" if utf8 else "ascii"
        try:
            smtp.send("".join(commands if pipelined else commands[:1]).encode(encoding))
            data = message.data
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _ClosedBeforeMail(Result(Status.DEFERRED,
                                           f"{self._where()}: {self._describe(exc)}",
                                           throttled=_code(exc) == 421)) from None
        if code == 421:
            self._drop()
            raise _ClosedBeforeMail(Result(Status.DEFERRED, self._reply(code, reply),
                                           throttled=True))
        replies = [(code, reply)]
        try:
            for step in (1, 2):
                if not pipelined:
                    if replies[-1][0] not in EXPECTED[step - 1]:
                        break
                    smtp.send(commands[step].encode(encoding))
                replies.append(smtp.getreply())
            refused = next((i for i, (c, _) in enumerate(replies) if c not in EXPECTED[i]), None)
            if refused is not None and len(replies) == 3 and replies[2][0] == 354:
                smtp.send(b".\r\n")  # data was invited for a refused envelope: send none
                smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:  # nothing of the message was sent
            self._drop()
            return Result(Status.DEFERRED, f"{self._where()}: {self._describe(exc)}",
                          throttled=_code(exc) == 421)
        if refused is not None:
            code, reply = replies[refused]
            if refused == 0 and code >= 500:
                self.close()
                text = self._reply(code, reply)
                raise TransportError(f"{self._where()} refuses the sender {sender}: "
                                     f"{text}", text, provider=self._where(), status=code)
            return self._refused(smtp, code, reply)
        try:
            smtp.send(data + b".\r\n")  # one write: no Nagle delay before the dot
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:  # the data left; the verdict did not come
            self._drop()
            return Result(Status.UNKNOWN, f"{self._where()}: connection lost after the message "
                                          f"data ({self._describe(exc)})")
        if code == 250:
            return Result(Status.SENT, self._reply(code, reply))
        if code == 421:
            self._drop()
        return Result(Status.DEFERRED if code < 500 else Status.FAILED, self._reply(code, reply),
                      throttled=code == 421)

    def _refused(self, smtp: smtplib.SMTP, code: int, reply: bytes) -> Result:
        """A refusal before the message data: classify it and get ready for the next one."""
        text = self._reply(code, reply)
        if code == 421 or code < 0:
            self._drop()
            return Result(Status.DEFERRED, text, throttled=code == 421)
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        if code < 500:
            return Result(Status.DEFERRED, text)
        return Result(Status.FAILED, text, suppress=code in HARD_BOUNCE_CODES)

    def _reply(self, code: int, reply: bytes | str) -> str:
        """A server reply for messages and the ledger: one excerpt, without the password."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return self._redact(f"{code} {text}".strip())[:300]

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._reply(exc.smtp_code, exc.smtp_error)
        if isinstance(exc, socket.timeout | TimeoutError):
            return "timed out"
        return self._redact(str(exc) or type(exc).__name__)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _drop(self) -> None:
        _abort(self._smtp)
        self._smtp = None

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            _abort(self._smtp)
        self._smtp = None


class _ClosedBeforeMail(Exception):
    """The connection was gone at MAIL FROM: nothing of the message left; `result` if final."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(result.reply)


def _abort(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass


def _code(exc: BaseException) -> int | None:
    return getattr(exc, "smtp_code", None)
