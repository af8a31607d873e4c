"""`POST /webhooks/postmark`: Postmark's Bounce and SpamComplaint webhooks.

Postmark signs nothing: it authenticates with HTTP basic auth credentials written into the
webhook URL (`https://postmark:PASSWORD@newsletter.efus.eu/webhooks/postmark`). The user
is `[bounces] postmark_user` (default `postmark`), the password NEWSLETTER_POSTMARK_
WEBHOOK_PASSWORD. One event a request: `RecordType` Bounce (with `Type`, e.g. HardBounce,
SoftBounce, Blocked, and the remote server's `Details`) or SpamComplaint. The delivery is
named by the token the transport put in `Metadata`; Postmark's own `ID` identifies the
event, so a retried request counts once.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from ..envelope import TOKEN_FIELD
from ..states import EventKind, EventSource
from .classify import kind_of, status_code
from .report import Finding, Parsed
from .webhook import FirstTime, Refused, Webhook, WebhookRequest, iso_time, json_body, text_of

# Postmark's bounce Types, by what they mean here (any other Type changes nothing).
TYPES = {
    "HardBounce": EventKind.HARD, "BadEmailAddress": EventKind.HARD,
    "SoftBounce": EventKind.SOFT, "Transient": EventKind.SOFT, "DnsError": EventKind.SOFT,
    "Blocked": EventKind.BLOCKED, "SpamNotification": EventKind.BLOCKED,
    "DMARCPolicy": EventKind.BLOCKED,
    "SpamComplaint": EventKind.COMPLAINT,
}
DEFAULT_STATUS = {EventKind.HARD: "5.1.1", EventKind.SOFT: "4.0.0",
                  EventKind.BLOCKED: "5.7.1", EventKind.COMPLAINT: ""}


class PostmarkWebhook(Webhook):
    source = EventSource.POSTMARK
    secret_variable = "NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD"

    def verify(self, request: WebhookRequest, first_time: FirstTime) -> None:
        challenge = [("WWW-Authenticate", 'Basic realm="newsletter webhooks"')]
        kind, _, encoded = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "basic" or not encoded:
            raise Refused(401, "basic auth required, as in the webhook URL "
                               "https://postmark:PASSWORD@.../webhooks/postmark", challenge)
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(401, "unreadable basic auth credentials", challenge) from None
        good_user = hmac.compare_digest(user.encode(), self.settings.postmark_user.encode())
        if not (hmac.compare_digest(password.encode(), self.secret.encode()) and good_user):
            raise Refused(401, "wrong user or password", challenge)

    def parse(self, request: WebhookRequest) -> Parsed:
        event = json_body(request.body)
        if not isinstance(event, dict):
            raise Refused(400, "expected one JSON object, as Postmark sends")
        record = str(event.get("RecordType", ""))
        kind = TYPES.get("SpamComplaint" if record == "SpamComplaint"
                         else str(event.get("Type", ""))) if record in (
            "Bounce", "SpamComplaint") else None
        if kind is None:
            return Parsed(ignored=1, summary=f"Postmark {record} {event.get('Type', '')}")
        details = text_of(event.get("Details"))
        metadata = event.get("Metadata")
        token = str(metadata.get(TOKEN_FIELD, "")) if isinstance(metadata, dict) else ""
        if kind is EventKind.COMPLAINT:
            status = ""
        else:
            status = status_code("", details) or DEFAULT_STATUS[kind]
            if kind is EventKind.SOFT and kind_of(status) is EventKind.BLOCKED:
                kind = EventKind.BLOCKED
        diagnostic = details or text_of(event.get("Description"))
        finding = Finding(kind, self.source, f"postmark:{record}:{text_of(event.get('ID'), 40)}",
                          text_of(event.get("Email"), 254), status, diagnostic,
                          (token,) if token else (), (), iso_time(event.get("BouncedAt")))
        return Parsed([finding], summary=f"Postmark {record}")
