"""Amazon SES bounces and complaints, as Amazon SNS posts them: verify, confirm, read.

    POST body (JSON) --> TopicArn one of ours? --> SigningCertURL https on sns.REGION.
    amazonaws.com? --> its certificate (fetched once, TLS verified) --> the signature over
    the canonical string (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA)
        SubscriptionConfirmation  --> GET its SubscribeURL (the same host rule) --> []
        UnsubscribeConfirmation   --> []
        Notification              --> its Message: SES's JSON --> [SesEvent, ...]

The canonical string is each signed field that is present, as `Name\\nValue\\n`, in
this order (Amazon SNS, "Verifying the signatures of Amazon SNS messages"): Message,
MessageId, Subject, Timestamp, TopicArn, Type for a Notification; Message, MessageId,
SubscribeURL, Timestamp, Token, TopicArn, Type for the confirmations. A valid signature
proves only that SNS sent the message: anyone's topic could, so the TopicArn must be one
the newsletter subscribed to (`Trust.topics`).

SES's notification (or event-publishing) JSON carries `notificationType` (or
`eventType`) Bounce or Complaint, the `bounce` (bounceType Permanent, Transient or
Undetermined, and bouncedRecipients with status and diagnosticCode) or `complaint`
(complainedRecipients, complaintFeedbackType) object, and `mail`: SES's messageId (what
SendEmail answered, kept in the ledger's reply), `tags`, and, when the identity includes
original headers (event publishing always does), `headers` and `commonHeaders.messageId`:
the headers as we handed them over. Other types (Delivery, Send, Open...) change nothing
here. The webhook of `newsletter serve` (ses.py) proves a request with `read_message` and
`verify` before it acts on it with `handle`; `parse_notification` does all three.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

AWS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
TIMEOUT = 10.0
MAX_CERTIFICATE = 16_384  # bytes: a PEM certificate is about 2 KB


@dataclass(frozen=True)
class Trust:
    """What a message must come from: one of our topics, certificates from SNS hosts.

    `host` and `ca_file` change only for tests (a local server and its throwaway CA);
    production keeps sns.<region>.amazonaws.com and the system's CAs.
    """

    topics: tuple[str, ...]  # the TopicArns the newsletter subscribed to
    host: re.Pattern[str] = AWS_HOST  # matched against the whole host[:port]
    ca_file: str | None = None


@dataclass(frozen=True)
class SesEvent:
    """One recipient's bounce or complaint, in SES's own words."""

    kind: str  # "Bounce" or "Complaint"
    recipient: str
    bounce_type: str = ""  # Permanent, Transient or Undetermined
    bounce_subtype: str = ""  # General, NoEmail, Suppressed, MailboxFull...
    status: str = ""  # the enhanced status code, e.g. 5.1.1
    diagnostic: str = ""  # the remote server's words, e.g. "smtp; 550 5.1.1 user unknown"
    complaint_type: str = ""  # complaintFeedbackType (abuse, fraud...), when given
    feedback_id: str = ""  # SES's id of the report: the same report counts once
    ses_message_id: str = ""  # mail.messageId: what SendEmail answered
    message_id: str = ""  # our Message-ID, when SES includes the original headers
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    occurred_at: float | None = None
    headers: tuple[tuple[str, str], ...] = ()  # mail.headers: (name, value), as sent

    @property
    def permanent(self) -> bool:
        """A hard bounce: the address will never take mail."""
        return self.kind == "Bounce" and self.bounce_type == "Permanent"


class Rejected(Exception):  # noqa: N818 - a refusal, answered with its status
    """The request is not a message of ours from SNS (403), not readable (400), or cannot
    be checked now (503: SNS tries again). Nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(reason)


def parse_notification(body: bytes, trust: Trust) -> list[SesEvent]:
    """The SES events of one SNS POST, after proving it; confirms a subscription."""
    message = read_message(body, trust)
    verify(message, trust)
    return handle(message, trust)


def read_message(body: bytes, trust: Trust) -> dict[str, str]:
    """The SNS message in a POST body, if it is one and from one of our topics (nothing is
    fetched: `verify` proves it)."""
    message = _json(body, "the body")
    if not isinstance(message, dict) or not all(isinstance(v, str) for v in message.values()):
        raise Rejected(400, "expected an SNS message: one JSON object of strings")
    kind = message.get("Type", "")
    if kind not in SIGNED:
        raise Rejected(400, f"Type {kind!r}: expected Notification, SubscriptionConfirmation "
                            "or UnsubscribeConfirmation")
    if message.get("TopicArn") not in trust.topics:
        raise Rejected(403, f"TopicArn {message.get('TopicArn')!r} is not one of ours")
    return message


def handle(envelope: Mapping[str, str], trust: Trust) -> list[SesEvent]:
    """What a proven SNS message asks: confirm the subscription, or its SES events."""
    kind = envelope["Type"]
    if kind == "SubscriptionConfirmation":
        _confirm(envelope, trust)
        return []
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS: %s unsubscribed this endpoint", envelope["TopicArn"])
        return []
    return ses_events(envelope.get("Message", ""))


def verify(envelope: Mapping[str, str], trust: Trust) -> None:
    """Raise Rejected unless SNS signed these fields with a certificate from an SNS host."""
    algorithm = HASHES.get(envelope.get("SignatureVersion", ""))
    if algorithm is None:
        raise Rejected(403, f"SignatureVersion {envelope.get('SignatureVersion')!r}: "
                            "expected 1 or 2")
    try:
        signature = base64.b64decode(envelope.get("Signature", ""), validate=True)
    except binascii.Error:
        raise Rejected(403, "the Signature is not base64") from None
    url = _trusted(envelope.get("SigningCertURL", ""), trust, "SigningCertURL")
    if not urlsplit(url).path.endswith(".pem"):
        raise Rejected(403, f"SigningCertURL {url!r}: expected a .pem certificate")
    certificate = _certificate(url, trust.ca_file or True)
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Rejected(403, f"the signing certificate of {url} is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Rejected(403, "the signing certificate holds no RSA key")
    try:
        key.verify(signature, canonical(envelope), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Rejected(403, "the signature does not match the message") from None


def canonical(envelope: Mapping[str, str]) -> bytes:
    """The string SNS signs: each present signed field as `Name\\nValue\\n`, in order."""
    names = SIGNED[envelope["Type"]]
    return "".join(f"{n}\n{envelope[n]}\n" for n in names if n in envelope).encode()


def ses_events(message: str) -> list[SesEvent]:
    """The bounces and complaints in SES's notification JSON (other types: none)."""
    data = _json(message.encode(), "the Message")
    if not isinstance(data, dict):
        raise Rejected(400, "the Message is not an SES notification")
    kind = data.get("notificationType") or data.get("eventType")
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    headers = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    original = mail.get("headers") if isinstance(mail.get("headers"), list) else []
    common = {"ses_message_id": str(mail.get("messageId") or ""),
              "message_id": str(headers.get("messageId") or ""),
              "tags": {str(k): tuple(map(str, v)) for k, v in tags.items()
                       if isinstance(v, list)},
              "headers": tuple((str(h["name"]), str(h.get("value") or "")) for h in original
                               if isinstance(h, dict) and h.get("name"))}
    if kind == "Bounce":
        report, people = data.get("bounce"), "bouncedRecipients"
    elif kind == "Complaint":
        report, people = data.get("complaint"), "complainedRecipients"
    else:
        return []
    if not isinstance(report, dict) or not isinstance(report.get(people), list):
        raise Rejected(400, f"the {kind} notification has no {people}")
    shared = {"kind": kind, "feedback_id": str(report.get("feedbackId") or ""),
              "bounce_type": str(report.get("bounceType") or ""),
              "bounce_subtype": str(report.get("bounceSubType") or ""),
              "complaint_type": str(report.get("complaintFeedbackType") or ""),
              "occurred_at": _time(report.get("timestamp")), **common}
    return [SesEvent(recipient=str(person["emailAddress"]),
                     status=str(person.get("status") or ""),
                     diagnostic=str(person.get("diagnosticCode") or ""), **shared)
            for person in report[people]
            if isinstance(person, dict) and person.get("emailAddress")]


def _trusted(url: str, trust: Trust, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not trust.host.fullmatch(parts.netloc):
        raise Rejected(403, f"{name} {url[:200]!r}: expected https on an SNS host "
                            "(sns.<region>.amazonaws.com)")
    return url


@functools.lru_cache(maxsize=64)
def _certificate(url: str, verify: bool | str) -> x509.Certificate:
    """The signing certificate at `url`: fetched once per process (SNS rotates them by
    changing the URL)."""
    try:
        response = requests.get(url, timeout=TIMEOUT, verify=verify, allow_redirects=False)
    except requests.RequestException as exc:
        raise Rejected(503, f"cannot fetch the signing certificate {url}: "
                            f"{type(exc).__name__}") from None
    if response.status_code != 200 or len(response.content) > MAX_CERTIFICATE:
        raise Rejected(503, f"the signing certificate {url} answered {response.status_code}")
    try:
        return x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise Rejected(403, f"{url} is not a PEM certificate") from None


def _confirm(envelope: Mapping[str, str], trust: Trust) -> None:
    url = _trusted(envelope.get("SubscribeURL", ""), trust, "SubscribeURL")
    try:
        response = requests.get(url, timeout=TIMEOUT, verify=trust.ca_file or True,
                                allow_redirects=False)
    except requests.RequestException as exc:
        raise Rejected(503, f"cannot confirm the subscription: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise Rejected(503, f"confirming the subscription answered {response.status_code}")
    log.info("SNS: confirmed the subscription to %s", envelope["TopicArn"])


def _json(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, f"{what} is not JSON") from None


def _time(value: object) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
