"""Composed email + recipient -> the exact bytes handed to a transport.

The MIME structure is built once per issue. Each part's body is split at its placeholders
and the literal pieces are quoted-printable encoded once, each ending in a soft line break;
per recipient only the short values are encoded and the pieces joined. A placeholder can
therefore never be cut by a soft line break (`%%UN=\\r\\nSUB%%`), and a message costs a few
tens of microseconds instead of building an `EmailMessage`.
"""

from __future__ import annotations

import binascii
import datetime as dt
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace
from email import base64mime, quoprimime
from email.header import Header
from email.utils import format_datetime, formataddr, getaddresses, parseaddr

from ..audience.tokens import TEST_SUBSCRIBER_ID, Signer
from ..compose.render import ComposedEmail, issue_url, web_url
from ..config import Settings
from ..envelope import Personalised, Recipient
from ..errors import ConfigError, HeaderInjectionError
from ..grammar import PLACEHOLDER
from .signing import DkimSigner

# CR, LF, NUL, the other C0 controls but TAB, DEL, and what str.splitlines() breaks on.
FORBIDDEN_IN_HEADERS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")
QP_LINE = 76  # RFC 2045: at most 76 octets per quoted-printable line, soft break included
TEST_LIST = "__test__"


def check_header_value(value: str, source: str) -> str:
    """Refuse CR, LF, NUL and Unicode line separators anywhere a header is made from."""
    if FORBIDDEN_IN_HEADERS.search(value):
        raise HeaderInjectionError(f"{source}: contains a line break or control character "
                                   f"({value[:60]!r}); header values must be one line")
    return value


HEADER_LINE = 78  # RFC 5322: lines SHOULD be at most 78 characters


def address_header(name: str, email: str, source: str, header: str = "To",
                   utf8: bool = False) -> str:
    """`Name <address>`, folded at spaces within 78 characters, `header: ` included.

    The name is quoted if it has specials (a comma) and RFC 2047-encoded if not ASCII; a
    non-ASCII address is allowed only in a message sent with SMTPUTF8 (`utf8`, RFC 6532).
    """
    check_header_value(name, f"{source} name")
    check_header_value(email, f"{source} address")
    if not email.isascii() and not utf8:
        raise HeaderInjectionError(f"{source} address {email!r}: non-ASCII addresses need "
                                   "SMTPUTF8")
    if not name:
        return email
    if name.isascii():
        return _fold_header(header, formataddr((name, email)))
    whole = f"{_encoded_word(name) or Header(name, 'utf-8').encode(maxlinelen=998)} <{email}>"
    if len(header) + 2 + len(whole) <= HEADER_LINE:
        return whole
    # Too long for a line: one encoded word per run of words, the space between them inside
    # the encoded text (the space between two encoded words is not text, RFC 2047 6.2), so
    # that the folds fall between the name's words.
    limit = HEADER_LINE - len(header) - 3

    def fits(text: str) -> bool:
        return len(Header(text, "utf-8").encode(maxlinelen=998)) <= limit

    chunks: list[str] = []  # each ends with the space that follows it in the name, if any
    for word in name.split(" "):
        if chunks and chunks[-1].endswith(" ") and fits(chunks[-1] + word + " "):
            chunks[-1] += word + " "
            continue
        while not fits(word + " "):  # a word longer than a line: cut between characters
            cut = max(i for i in range(1, len(word)) if fits(word[:i])) if len(word) > 1 else 1
            chunks.append(word[:cut])
            word = word[cut:]
        chunks.append(word + " ")
    chunks[-1] = chunks[-1][:-1]
    encoded = [Header(chunk, "utf-8").encode(maxlinelen=998) for chunk in chunks if chunk]
    return _fold_header(header, " ".join(encoded + [f"<{email}>"]))


def _encoded_word(name: str) -> str | None:
    """What `Header(name, "utf-8").encode()` writes when it fits one encoded-word, 20 times
    faster: B or Q, whichever is shorter (RFC 2047); None for names it would fold."""
    raw = name.encode("utf-8")
    b_length, q_length = base64mime.header_length(raw), quoprimime.header_length(raw)
    if min(b_length, q_length) > 64:  # 76 columns less `=?utf-8?q?` and `?=`
        return None
    if b_length < q_length:
        return base64mime.header_encode(raw, "utf-8")
    return quoprimime.header_encode(raw, "utf-8")


def _fold_header(header: str, value: str) -> str:
    """Fold a header value at its spaces so that no line is longer than 78 characters."""
    if len(header) + 2 + len(value) <= HEADER_LINE:
        return value
    lines, line = [], header + ":"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > HEADER_LINE and line.strip() and line != header + ":":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines)[len(header) + 2:]


def wire_address(email: str) -> str:
    """The address as it goes on the wire: a non-ASCII domain in IDNA (punycode) form."""
    if email.isascii():
        return email
    local, _, domain = email.rpartition("@")
    if domain.isascii():
        return email
    from email_validator import EmailNotValidError, validate_email

    try:
        ascii_domain = validate_email("x@" + domain, check_deliverability=False).ascii_domain
    except EmailNotValidError as exc:
        raise HeaderInjectionError(f"subscriber address {email!r}: {exc}") from None
    return f"{local}@{ascii_domain}"


class EncodedPart:
    """One text part, pre-encoded around its placeholders."""

    def __init__(self, content_type: str, body: str, fixed: Mapping[str, str], *,
                 escape: bool) -> None:
        self.escape = escape
        pieces = PLACEHOLDER.split(body.replace("\r\n", "\n"))
        self.literals: list[bytes] = []
        self.slots: list[str] = []
        literal = pieces[0]
        for index in range(1, len(pieces), 2):
            name, following = pieces[index], pieces[index + 1]
            if name in fixed:  # same for every recipient: baked in now
                literal += _escaped(fixed[name], escape) + following
                continue
            self.literals.append(_qp(literal, soft_end=True))
            self.slots.append(name)
            literal = following
        self.literals.append(_qp(literal, soft_end=False))
        self.header = (f"Content-Type: {content_type}; charset=\"utf-8\"\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")

    def render(self, values: Mapping[str, str], out: list[bytes]) -> None:
        out.append(self.header)
        literals = self.literals
        for index, name in enumerate(self.slots):
            out.append(literals[index])
            out.append(_qp(_escaped(values.get(name, ""), self.escape), soft_end=True))
        out.append(literals[-1])


class MessageFactory:
    """Everything common to the messages of one issue, prepared once (a MessageSource)."""

    def __init__(self, composed: ComposedEmail, settings: Settings, signer: Signer, *,
                 send_key: str, send_id: int | None = None, date: dt.datetime | None = None,
                 dkim: DkimSigner | None = None) -> None:
        self.composed, self.settings, self.signer, self.dkim = composed, settings, signer, dkim
        self.send_key = send_key  # with the subscriber id, makes a stable Message-ID
        self.send_id = send_id  # the ledger's send: with a return path, names each delivery
        local, _, domain = (settings.return_path or "").partition("@")
        self.return_path = (local, domain) if send_id is not None and not composed.test \
            and settings.return_path else None
        self.test = composed.test
        self.web_url = web_url(settings, composed)
        self.asset_url = issue_url(settings, composed.issue)  # every edition's images are there
        self.base_url = settings.base_url.rstrip("/")
        self.sender_address = settings.sender_address
        self.domain = settings.sender_domain
        self.unsubscribe_mailto = settings.unsubscribe_mailto
        self.name_fallback = composed.name_fallback or settings.name_fallback
        fixed = {"web_url": self.web_url}
        html_body = composed.html_with_assets(self.asset_url)
        self.parts = (EncodedPart("text/plain", composed.text, fixed, escape=False),
                      EncodedPart("text/html", html_body, fixed, escape=True))
        self.boundary = "=_nl_" + secrets.token_hex(12)
        self.common = self._common_headers(date or dt.datetime.now(dt.UTC))

    def _common_headers(self, date: dt.datetime) -> bytes:
        s = self.settings
        sender_name, sender_email = parseaddr(check_header_value(s.sender, "newsletter.toml "
                                                                 "sender"))
        if not sender_email or "@" not in sender_email:
            raise HeaderInjectionError(f"newsletter.toml sender {s.sender!r}: expected "
                                       "'Name <address@domain>'")
        subject = check_header_value(self.composed.subject, "issue subject")
        lines = [
            f"From: {address_header(sender_name, sender_email, 'newsletter.toml sender')}",
            "Subject: " + Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
            if not subject.isascii() or len(subject) > 900 else f"Subject: {subject}",
            f"Date: {format_datetime(date)}",
            "MIME-Version: 1.0",
        ]
        if s.reply_to:
            check_header_value(s.reply_to, "newsletter.toml reply_to")
            lines.append("Reply-To: " + ", ".join(
                address_header(n, a, "newsletter.toml reply_to")
                for n, a in getaddresses([s.reply_to])))
        list_name, list_address = parseaddr(check_header_value(s.list_id_value,
                                                               "newsletter.toml list_id"))
        if not LIST_ID.fullmatch(list_address):
            raise ConfigError(f"newsletter.toml list_id {s.list_id_value!r}: expected "
                              "'Name <label.example.org>', a dot-atom in <> (RFC 2919)")
        lines.append("List-Id: " + (address_header(list_name, list_address, "list_id")
                                    if list_name else f"<{list_address}>"))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        lines.append(f"Content-Type: multipart/alternative; boundary=\"{self.boundary}\"")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def message_id(self, recipient: Recipient) -> str:
        if self.test:  # every test send is a new message, or clients would hide it
            return f"<test.{secrets.token_hex(8)}.{self.composed.issue.slug}@{self.domain}>"
        key = self.signer.message_key(self.send_key, recipient.subscriber_id)
        return f"<{self.composed.issue.slug}.{key}@{self.domain}>"

    def unsubscribe_url(self, recipient: Recipient) -> str:
        list_name = TEST_LIST if self.test else recipient.list_name
        subscriber = TEST_SUBSCRIBER_ID if self.test else recipient.subscriber_id
        token = self.signer.unsubscribe_token(subscriber, list_name)
        return f"{self.base_url}/unsubscribe/{token}"

    def preferences_url(self, recipient: Recipient) -> str:
        subscriber = TEST_SUBSCRIBER_ID if self.test else recipient.subscriber_id
        return f"{self.base_url}/preferences/{self.signer.preferences_token(subscriber)}"

    def personalise(self, recipient: Recipient) -> Personalised:
        """One recipient's message; its Message-ID is the same on every retry."""
        message_id = self.message_id(recipient)
        unsubscribe = self.unsubscribe_url(recipient)
        name = recipient.name or self.name_fallback
        values = dict(recipient.fields)
        values.update(name=name, email=recipient.email, unsubscribe_url=unsubscribe,
                      preferences_url=self.preferences_url(recipient), web_url=self.web_url)
        address = wire_address(recipient.email)
        if address != recipient.email:
            recipient = replace(recipient, email=address)
        list_unsubscribe = f"<{unsubscribe}>"
        if self.unsubscribe_mailto:
            list_unsubscribe += (f",\r\n <mailto:{self.unsubscribe_mailto}?subject="
                                 f"unsubscribe%20{unsubscribe.rpartition('/')[2]}>")
        headers = {
            "To": address_header(recipient.name, recipient.email,
                                 f"subscriber {recipient.email!r}",
                                 utf8=not recipient.email.isascii()),
            "Message-ID": message_id,
            "List-Unsubscribe": list_unsubscribe,
        }
        if self.return_path is None:
            return Personalised(recipient, message_id, values, headers, self)
        token = self.signer.delivery_token(self.send_id, recipient.subscriber_id)  # type: ignore[arg-type]
        local, domain = self.return_path
        return Personalised(recipient, message_id, values, headers, self, token=token,
                            return_path=f"{local}+{token}@{domain}")

    def wire_bytes(self, message: Personalised) -> bytes:
        own = [f"{key}: {value}\r\n".encode() for key, value in message.headers.items()]
        boundary = self.boundary.encode("ascii")
        body: list[bytes] = []
        for part in self.parts:
            body.append(b"--" + boundary + b"\r\n" if not body else
                        b"\r\n--" + boundary + b"\r\n")
            part.render(message.values, body)
        body.append(b"\r\n--" + boundary + b"--\r\n")
        if self.dkim is None:
            return b"".join((self.common, *own, b"\r\n", *body))
        return self.dkim.sign_parts(self.common, own, body, canonical_body=True)  # as _qp writes

    # What the mail-service APIs need instead of wire bytes.

    @property
    def subject(self) -> str:
        return self.composed.subject

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def reply_to(self) -> str | None:
        return self.settings.reply_to

    @property
    def html_template(self) -> str:
        """The HTML with `%%placeholders%%` for per-recipient values (HTML-escape them)."""
        return self.composed.html_with_assets(self.asset_url).replace("%%web_url%%",
                                                                   html.escape(self.web_url))

    @property
    def text_template(self) -> str:
        return self.composed.text.replace("%%web_url%%", self.web_url)

    @property
    def common_headers(self) -> dict[str, str]:
        """The headers every message carries, by name, as they appear on the wire."""
        lines = self.common.decode("utf-8").replace("\r\n ", " ").split("\r\n")
        return dict(line.split(": ", 1) for line in lines if ": " in line)


def _escaped(value: str, escape: bool) -> str:
    return html.escape(value) if escape else value


def _qp(text: str, *, soft_end: bool) -> bytes:
    """Quoted-printable with CRLF lines, no line starting with '.', optionally ending softly.

    A leading '.' is written `=2E` so that the SMTP transport never needs to dot-stuff. No
    tab and no two spaces in a row either: DKIM's relaxed canonicalisation then leaves the
    body as it is, and the signer hashes it without rewriting 60 KB per message.
    """
    if not text:
        return b""
    plain = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(plain, istext=True)
    if b"\t" in encoded:
        encoded = encoded.replace(b"\t", b"=09")
    if b"  " in encoded:
        encoded = encoded.replace(b"  ", b" =20")
    encoded = encoded.replace(b"\n", b"\r\n")
    encoded = encoded.replace(b"\r\n.", b"\r\n=2E")
    if encoded.startswith(b"."):
        encoded = b"=2E" + encoded[1:]
    if soft_end:
        encoded += b"="
    if len(encoded) > QP_LINE:  # b2a_qp's lines can end at 77-78 octets, and so can ours
        encoded = b"\r\n".join(folded for line in encoded.split(b"\r\n")
                                for folded in _fold(line))
    return encoded + b"\r\n" if soft_end else encoded


def _fold(line: bytes) -> list[bytes]:
    """A quoted-printable line cut into lines of 76 octets or less, never inside `=XX`."""
    body, end = (line[:-1], b"=") if line.endswith(b"=") else (line, b"")
    lines = []
    while len(body) + len(end) > QP_LINE:
        cut = QP_LINE - 1
        if body[cut - 1:cut] == b"=":
            cut -= 1
        elif body[cut - 2:cut - 1] == b"=":
            cut -= 2
        lines.append(body[:cut] + b"=")
        body = body[cut:]
        if body.startswith(b"."):
            body = b"=2E" + body[1:]
    lines.append(body + end)
    return lines
