"""`bounces fetch`: the reports delivered to a mailbox, read over IMAP (imapclient).

    imaps://bounces@mail.example.org/INBOX            TLS from the first byte (port 993)
    imap://bounces@mail.example.org/INBOX             STARTTLS, required (port 143)
    imaps://bounces@mail.example.org/INBOX?ca_file=certs/ca.pem   a private CA

Certificates and host names are verified as for SMTP; the password comes only from
NEWSLETTER_IMAP_PASSWORD. Messages are read in batches, only their first MAX_PARSED bytes
(BODY.PEEK, so nothing is marked read). A message leaves the folder only after what it
reports is committed: then it moves to `processed_folder` (handled: recorded, a duplicate,
an auto-reply or a notice that changes nothing) or to `review_folder` (not a report, or a
report that names no delivery of ours), for a person. Nothing is ever deleted. A run
killed between the commit and the move leaves the message in place, and the next run
finds its event already recorded: it counts once. One run at a time (a lock beside the
database), so cron may start it as often as it likes.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from ..config import Settings
from ..delivery.lock import SendLock
from ..errors import ConfigError, MailboxError
from ..states import Disposition, EventSource
from .intake import Intake, Tally, disposition_of
from .parse import MAX_PARSED, parse_message

PASSWORD_VARIABLE = "NEWSLETTER_IMAP_PASSWORD"
BATCH = 50  # messages fetched, recorded and moved together
HANDLED = (Disposition.RECORDED, Disposition.DUPLICATE, Disposition.IGNORED,
           Disposition.AUTO_REPLY, Disposition.UNSUBSCRIBED)
_PART = f"BODY.PEEK[]<0.{MAX_PARSED}>"
_ANSWER = b"BODY[]<0>"


@dataclass(frozen=True)
class Mailbox:
    """Where the bounce mailbox is, from `[bounces] imap` or `--mailbox`."""

    host: str
    port: int
    user: str
    folder: str
    implicit_tls: bool
    ca_file: str | None
    timeout: float
    password: str = field(repr=False, default="")

    @property
    def description(self) -> str:
        scheme = "imaps" if self.implicit_tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


@dataclass
class FetchReport:
    mailbox: str
    messages: int = 0
    tally: Tally = field(default_factory=Tally)
    moved: dict[str, int] = field(default_factory=dict)


def mailbox_from_url(url: str, settings: Settings) -> Mailbox:
    """Check an `imaps://user@host[:port]/FOLDER` URL and find its password."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.scheme not in ("imap", "imaps"):
        raise ConfigError(f"mailbox {shown}: expected imaps://user@host/FOLDER or "
                          "imap://user@host/FOLDER (STARTTLS)")
    if parts.password is not None:
        raise ConfigError(f"mailbox {shown}: do not put the password in the URL; set "
                          f"{PASSWORD_VARIABLE} in the environment instead")
    if not parts.hostname or not parts.username:
        raise ConfigError(f"mailbox {shown}: expected a user and a host, as in "
                          "imaps://bounces@mail.example.org/INBOX")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"ca_file"})
    if unknown:
        raise ConfigError(f"mailbox {shown}: unknown option(s) {', '.join(unknown)}; "
                          "expected ca_file=PATH")
    password = settings.env.get(PASSWORD_VARIABLE, "")
    if not password:
        raise ConfigError(f"mailbox {shown}: set {PASSWORD_VARIABLE} in the environment to "
                          f"the password of {unquote(parts.username)!r}")
    ca_file = query.get("ca_file") or settings.ca_file
    implicit = parts.scheme == "imaps"
    return Mailbox(parts.hostname, parts.port or (993 if implicit else 143),
                   unquote(parts.username), unquote(parts.path.lstrip("/")) or "INBOX",
                   implicit, str(settings.path(ca_file)) if ca_file else None,
                   settings.timeout, password)


def fetch(settings: Settings, url: str | None = None, *,
          on_message: Callable[[int, Disposition, str], None] = lambda uid, d, s: None
          ) -> FetchReport:
    """Record every report in the mailbox and move each message once it is recorded."""
    if not (url or settings.imap):
        raise ConfigError("no bounce mailbox: set imap = \"imaps://user@host/INBOX\" under "
                          "[bounces] in newsletter.toml, or give --mailbox URL")
    box = mailbox_from_url(url or settings.imap or "", settings)
    report = FetchReport(box.description)
    with SendLock(settings.database_path, "bounces", activity="reading the bounce mailbox"):
        client = _connect(box)
        try:
            with Intake(settings) as intake:
                _fetch_all(client, box, settings, intake, report, on_message)
        except (IMAPClientError, imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"{box.description}: {_describe(exc)}; the messages not yet "
                               "moved stay in the folder for the next run") from None
        finally:
            _logout(client)
    return report


def _fetch_all(client: IMAPClient, box: Mailbox, settings: Settings, intake: Intake,
               report: FetchReport, on_message: Callable[[int, Disposition, str], None]
               ) -> None:
    targets = {True: settings.processed_folder, False: settings.review_folder}
    for folder in set(targets.values()):
        if not client.folder_exists(folder):
            client.create_folder(folder)
    client.select_folder(box.folder)
    uids = sorted(client.search("ALL"))
    for start in range(0, len(uids), BATCH):
        chunk = uids[start:start + BATCH]
        answers = client.fetch(chunk, [_PART])
        moves: dict[bool, list[int]] = {True: [], False: []}
        for uid in chunk:
            data = answers.get(uid, {}).get(_ANSWER)
            if data is None:  # expunged by someone else meanwhile
                continue
            parsed = parse_message(bytes(data), EventSource.IMAP)
            verdicts = intake.record(parsed)  # committed before the message moves
            disposition = disposition_of(parsed, verdicts)
            report.messages += 1
            report.tally.add(disposition, verdicts[0].finding.kind if verdicts else None,
                             1)
            moves[disposition in HANDLED].append(uid)
            on_message(uid, disposition, parsed.summary)
        for handled, moving in moves.items():
            if moving:
                _move(client, moving, targets[handled])
                report.moved[targets[handled]] = report.moved.get(targets[handled], 0) \
                    + len(moving)


def _connect(box: Mailbox) -> IMAPClient:
    try:
        context = ssl.create_default_context(cafile=box.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ca_file {box.ca_file}: cannot be read ({exc})") from None
    where = f"{box.host}:{box.port}"
    client: IMAPClient | None = None
    try:
        client = IMAPClient(box.host, port=box.port, ssl=box.implicit_tls,
                            ssl_context=context, timeout=box.timeout)
        if not box.implicit_tls:
            if b"STARTTLS" not in client.capabilities():
                raise MailboxError(f"{where} does not offer STARTTLS; refusing to send the "
                                   "password in plaintext")
            client.starttls(context)
        client.login(box.user, box.password)
        return client
    except ssl.SSLCertVerificationError as exc:
        raise MailboxError(f"{where}: TLS certificate not trusted ({exc.verify_message}); "
                           "nothing was read. For a private server, add ?ca_file=PATH to "
                           "the mailbox URL") from None
    except LoginError as exc:
        _logout(client)
        raise MailboxError(f"{where} refused the login of {box.user!r} "
                           f"({_describe(exc)}); check the user in the mailbox URL and "
                           f"{PASSWORD_VARIABLE}") from None
    except (IMAPClientError, imaplib.IMAP4.error, OSError) as exc:
        _logout(client)
        raise MailboxError(f"{where}: cannot connect ({_describe(exc)}); nothing was read"
                           ) from None


def _move(client: IMAPClient, uids: Sequence[int], folder: str) -> None:
    """MOVE (RFC 6851) where offered; else copy, then delete and expunge only those."""
    if b"MOVE" in client.capabilities():
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    client.add_flags(uids, [b"\\Deleted"])
    if b"UIDPLUS" in client.capabilities():
        client.uid_expunge(uids)
    else:
        client.expunge()


def _logout(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except (IMAPClientError, imaplib.IMAP4.error, OSError):
        try:
            client.shutdown()
        except (IMAPClientError, imaplib.IMAP4.error, OSError):
            pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = str(exc).replace("b'", "'")
    return text[:300] or type(exc).__name__
