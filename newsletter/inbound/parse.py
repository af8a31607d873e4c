"""One incoming message -> what it reports: RFC 3464 DSNs, RFC 5965 feedback reports, the
common non-standard bounces (flufl.bounce), and RFC 3834 auto-replies, which are ignored.

    multipart/report; report-type=delivery-status   one Finding per failed recipient
    multipart/report; report-type=feedback-report   a complaint (Feedback-Type abuse,
                                                    fraud or other)
    an auto-reply (Auto-Submitted, X-Autoreply,     ignored: not a bounce
      a vacation subject), not from a mailer-daemon
    anything flufl.bounce recognises                soft, or what a status code in the
                                                    text says
    anything else                                   not a report: for a person to read

Only the first MAX_PARSED bytes are parsed: a DSN's status comes before the returned
message, and a multi-megabyte mail costs no more than that. Nothing here trusts the
report: it collects the tokens and Message-IDs that may name our delivery, and intake.py
checks them.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.utils
import logging
import re
from collections.abc import Iterable, Iterator
from email.message import Message

from flufl.bounce import all_failures

from ..states import Disposition, EventKind, EventSource
from .classify import diagnostic_text, kind_of, status_code
from .report import Finding, Parsed, event_key

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback whenever one of its heuristics trips on odd input; we log
# one line of our own instead.
_flufl_log = logging.getLogger("flufl.bounce")
_flufl_log.addHandler(logging.NullHandler())
_flufl_log.propagate = False
MAX_PARSED = 1 << 20  # bytes of a message that are parsed; the rest is kept, not read
MAX_FINDINGS = 50  # recipients of one report: ours have one, so more is noise
TOKEN = re.compile(r"\+([0-9]{1,12}\.[0-9]{1,12}\.[a-z2-7]{13})@", re.IGNORECASE)
# What a mail client writes from List-Unsubscribe's `mailto:...?subject=unsubscribe%20TOKEN`.
UNSUBSCRIBE_REQUEST = re.compile(
    r"\s*unsubscribe\s+([A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{1,100})\s*", re.IGNORECASE)
MESSAGE_ID_LINE = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global",
                  "message/global-headers")
STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
COMPLAINT_TYPES = ("abuse", "fraud", "other", "")
DAEMONS = ("mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon")
VACATION = re.compile(r"^\s*(auto(matic|matische)?[ _-]?(reply|response|antwort|respuesta)"
                      r"|auto:|out of (the )?office|abwesenheit|réponse automatique"
                      r"|respuesta automática|risposta automatica|vacation|on holiday"
                      r"|away from (the )?office|absence)", re.IGNORECASE)


def parse_message(data: bytes, source: EventSource, *, envelope_recipient: str = "") -> Parsed:
    """What the message `data` reports; never raises for what a remote server wrote."""
    data = data[:MAX_PARSED]
    # The headers first: a report's parts are then split at its boundary and only their
    # headers parsed, several times faster than the email package parsing the whole of the
    # message it returns. Anything else is parsed in full.
    message = _header_block(data.decode("utf-8", "replace"), with_payload=True)
    report_id = _header(message, "Message-ID") or event_key(data)
    outer = _Keys()
    outer.tokens_in([envelope_recipient, *(v for name in ENVELOPE_HEADERS
                                          for v in message.get_all(name, []))])
    try:
        parts = _split(message) if message.get_content_type() == "multipart/report" else {}
        if not parts.keys() & {"message/feedback-report", *STATUS_TYPES}:
            message = email.message_from_bytes(data)
            parts = _index(message) if message.get_content_type() == "multipart/report" \
                else {}
        if parts:
            if "message/feedback-report" in parts:
                return _feedback(message, parts, source, report_id, outer)
            if any(kind in parts for kind in STATUS_TYPES):
                return _delivery_status(message, parts, source, report_id, outer)
        if request := UNSUBSCRIBE_REQUEST.fullmatch(_decoded(_header(message, "Subject"))):
            return Parsed(unsubscribe=request[1], summary="unsubscribe request by mail")
        if _is_auto_reply(message):
            return Parsed(disposition=Disposition.AUTO_REPLY, summary="auto-reply")
        return _non_standard(message, source, report_id, outer)
    except (LookupError, ValueError, TypeError, AttributeError, AssertionError) as exc:
        # The email package's tolerance has limits: a report it cannot take apart is
        # not ours to guess at.
        log.info("could not take the message apart: %s", exc)
        return Parsed(disposition=Disposition.NOT_A_REPORT, summary="unreadable MIME")


class _Keys:
    """The tokens and Message-IDs found so far, in the order found, each once."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.message_ids: list[str] = []

    def tokens_in(self, texts: Iterable[object]) -> None:
        for text in texts:
            for token in TOKEN.findall(str(text or "")):
                if token.lower() not in self.tokens:
                    self.tokens.append(token.lower())

    def message_id(self, value: object) -> None:
        found = re.search(r"<[^<>\s]{1,250}>", str(value or ""))
        if found and found[0] not in self.message_ids:
            self.message_ids.append(found[0])

    def original(self, headers: Message | None) -> None:
        """The keys in the headers of our message, as a report returns them."""
        if headers is None:
            return
        self.tokens_in([*headers.get_all("Return-Path", []), *headers.get_all("Sender", [])])
        self.message_id(headers.get("Message-ID"))

    def merged(self, other: _Keys) -> _Keys:
        keys = _Keys()
        keys.tokens = list(dict.fromkeys(self.tokens + other.tokens))
        keys.message_ids = list(dict.fromkeys(self.message_ids + other.message_ids))
        return keys


def _delivery_status(message: Message, parts: dict[str, Message], source: EventSource,
                     report_id: str, outer: _Keys) -> Parsed:
    status_part = next(parts[kind] for kind in STATUS_TYPES if kind in parts)
    blocks = _blocks(status_part)
    keys = _Keys()
    keys.original(_original_headers(parts))
    if blocks:  # the per-message fields: Postfix names the envelope sender there
        keys.tokens_in([*blocks[0].get_all("X-Postfix-Sender", []),
                        *blocks[0].get_all("Original-Envelope-Id", [])])
    keys = outer.merged(keys)
    findings, ignored = [], 0
    for block in blocks[1:]:
        action = _header(block, "Action").lower()
        recipient = _address(_header(block, "Final-Recipient")
                             or _header(block, "Original-Recipient"))
        if action != "failed":  # delayed, delivered, relayed, expanded: nothing to do
            ignored += 1
            continue
        diagnostic = diagnostic_text(_header(block, "Diagnostic-Code")
                                     or _header(block, "X-Exim-Diagnostic"))
        status = status_code(_header(block, "Status"), diagnostic) or "5.0.0"
        findings.append(Finding(kind_of(status), source, event_key(report_id, recipient,
                                                                    status),
                                recipient, status, diagnostic, tuple(keys.tokens),
                                tuple(keys.message_ids),
                                _date(_header(block, "Last-Attempt-Date")
                                      or _header(blocks[0], "Arrival-Date"))))
        if len(findings) >= MAX_FINDINGS:
            break
    if findings:
        return Parsed(findings, summary="delivery status notification")
    if ignored:
        return Parsed(disposition=Disposition.IGNORED, ignored=ignored,
                      summary="delivery status notification without a failure")
    return _non_standard(message, source, report_id, outer)


def _feedback(message: Message, parts: dict[str, Message], source: EventSource,
              report_id: str, outer: _Keys) -> Parsed:
    blocks = _blocks(parts["message/feedback-report"])
    fields = blocks[0] if blocks else Message()
    feedback = _header(fields, "Feedback-Type").lower()
    if feedback not in COMPLAINT_TYPES:  # not-spam, virus, auth-failure: not a complaint
        return Parsed(disposition=Disposition.IGNORED, ignored=1,
                      summary=f"feedback report ({feedback})")
    original = _original_headers(parts)
    keys = _Keys()
    keys.tokens_in(fields.get_all("Original-Mail-From", []))
    keys.original(original)
    keys = outer.merged(keys)
    recipient = _address(_header(fields, "Original-Rcpt-To")
                         or (_header(original, "X-HmXmrOriginalRecipient") if original else "")
                         or (_header(original, "To") if original else ""))
    when = _date(_header(fields, "Arrival-Date") or _header(fields, "Received-Date"))
    finding = Finding(EventKind.COMPLAINT, source, event_key(report_id, recipient, "abuse"),
                      recipient, "", f"marked as spam ({feedback or 'abuse'})"
                      + (f", reported by {_header(fields, 'User-Agent')}"
                         if _header(fields, "User-Agent") else ""),
                      tuple(keys.tokens), tuple(keys.message_ids), when)
    return Parsed([finding], summary="feedback report (ARF)")


def _non_standard(message: Message, source: EventSource, report_id: str,
                  outer: _Keys) -> Parsed:
    """A bounce in one of the shapes that predate RFC 3464, as flufl.bounce knows them."""
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # noqa: BLE001 - a heuristic detector tripped on odd input
        log.info("flufl.bounce could not read the message: %s", exc)
        temporary, permanent = frozenset(), frozenset()
    if not temporary and not permanent:
        return Parsed(disposition=Disposition.NOT_A_REPORT, summary="not a bounce")
    text = "\n".join(_texts(message))
    keys = _Keys()
    keys.tokens_in([text])
    for found in MESSAGE_ID_LINE.findall(text):
        keys.message_id(found)
    keys.original(_original_headers(_index(message)))
    keys = outer.merged(keys)
    findings = []
    for failed, default in ((permanent, "5.0.0"), (temporary, "4.0.0")):
        for raw in sorted(failed)[:MAX_FINDINGS]:
            recipient = _address(raw.decode("utf-8", "replace") if isinstance(raw, bytes)
                                 else str(raw))
            diagnostic = _line_about(text, recipient)
            status = status_code("", diagnostic) or default
            if default == "5.0.0" and status.startswith("4."):
                status = default
            findings.append(Finding(kind_of(status), source,
                                    event_key(report_id, recipient, status), recipient,
                                    status, diagnostic, tuple(keys.tokens),
                                    tuple(keys.message_ids)))
    return Parsed(findings, summary="bounce (non-standard)")


def _is_auto_reply(message: Message) -> bool:
    """RFC 3834 and the usual vacation markers, from anyone but a mail system."""
    sender = email.utils.parseaddr(_header(message, "From"))[1].lower()
    if sender.partition("@")[0] in DAEMONS:
        return False
    submitted = _header(message, "Auto-Submitted").lower()
    if submitted and submitted != "no":
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse")):
        return True
    if _header(message, "Precedence").lower() == "auto_reply":
        return True
    return bool(VACATION.match(_decoded(_header(message, "Subject"))))


def _split(message: Message) -> dict[str, Message]:
    """The top-level parts of a report whose body is still text, by content type; each
    part is its headers, with the rest of it as its payload."""
    boundary, body = message.get_boundary(), message.get_payload()
    if not boundary or not isinstance(body, str):
        return {}
    found: dict[str, Message] = {}
    for chunk in ("\n" + body).split(f"\n--{boundary}")[1:21]:
        if chunk.startswith("--"):  # the closing delimiter
            break
        part = _header_block(chunk.partition("\n")[2], with_payload=True)
        found.setdefault(part.get_content_type(), part)
    return found


_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_FIELD = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)


def _header_block(text: str, *, with_payload: bool = False) -> Message:
    """A block of `Name: value` lines as a Message (the rest, if asked, as its payload):
    what the email package's parser gives for a header block, without its per-line cost."""
    blank = _BLANK_LINE.search(text)
    if text.startswith(("\r\n", "\n")):  # no headers at all: the body starts at once
        head, rest = "", text.lstrip("\r\n")
    elif blank is not None:
        head, rest = text[:blank.start()], text[blank.end():]
    else:
        head, rest = text, ""
    block = Message()
    for name, value in _FIELD.findall(head[:65536]):
        block[name] = value.rstrip("\r")
    if with_payload:
        block.set_payload(rest)
    return block


def _index(message: Message, depth: int = 0,
           found: dict[str, Message] | None = None) -> dict[str, Message]:
    """The first part of each content type in a report, not descending into the message
    it returns (a message/rfc822 part is a leaf here)."""
    found = {} if found is None else found
    kind = message.get_content_type()
    found.setdefault(kind, message)
    if depth < 5 and kind.startswith("multipart/"):
        payload = message.get_payload()
        for part in payload[:20] if isinstance(payload, list) else ():
            if isinstance(part, Message):
                _index(part, depth + 1, found)
    return found


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return payload[:MAX_FINDINGS + 1]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
    return [_header_block(block.strip()) for block in _BLANK_LINE.split(text)
            if block.strip()][:MAX_FINDINGS + 1]


def _original_headers(parts: dict[str, Message]) -> Message | None:
    """The headers of the message the report is about, when it returns them."""
    part = next((parts[kind] for kind in ORIGINAL_TYPES if kind in parts), None)
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
            payload = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
        return _header_block(payload.lstrip())
    return None


def _texts(message: Message) -> Iterator[str]:
    """The text parts of a non-standard bounce, decoded, at most MAX_PARSED characters."""
    size = 0
    for part in message.walk():
        if part.get_content_maintype() != "text" or size > MAX_PARSED:
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            text = raw.decode(part.get_content_charset() or "utf-8", "replace") \
                if _known_charset(part.get_content_charset()) else raw.decode("utf-8", "replace")
            size += len(text)
            yield text


def _known_charset(name: str | None) -> bool:
    try:
        return bool(name) and "".encode(name) == b""  # type: ignore[arg-type]
    except LookupError:
        return False


def _line_about(text: str, recipient: str) -> str:
    """The line after the address in a bounce's text: where servers put their reply."""
    at = text.lower().find(recipient.lower()) if recipient else -1
    if at < 0:
        return ""
    return diagnostic_text(text[at + len(recipient):at + len(recipient) + 400].strip(" :>\n"))


def _header(message: Message | None, name: str) -> str:
    value = message.get(name) if message is not None else None
    return " ".join(str(value).split()) if value is not None else ""


def _decoded(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError, email.errors.HeaderParseError):
        return value


def _address(value: str) -> str:
    """`rfc822; Ana@Example.org` or `<ana@example.org>` -> ana@example.org."""
    kind, _, rest = value.partition(";")
    value = rest if rest and "@" not in kind else value
    return email.utils.parseaddr(value.strip())[1][:254] or value.strip()[:254]


def _date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
