"""`POST /webhooks/sendgrid`: SendGrid's Event Webhook, signed (ECDSA P-256, SHA-256).

SendGrid signs `timestamp + body` with its private key and sends the signature (base64,
DER) and the timestamp in X-Twilio-Email-Event-Webhook-Signature and -Timestamp; the
public key (base64 DER, as the dashboard shows it, or PEM) is `[bounces]
sendgrid_public_key`, or NEWSLETTER_SENDGRID_WEBHOOK_KEY. A request older than
`webhook_max_age`, or seen before, is a replay. The body is a JSON array of events: bounce
(`type` bounce or blocked), dropped (an address SendGrid already suppresses) and
spamreport count; the others (processed, delivered, deferred, open, click...) change
nothing. The delivery is named by the token in the transport's `custom_args`, which every
event carries; `sg_event_id` identifies the event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..config import Settings
from ..envelope import TOKEN_FIELD
from ..errors import ConfigError
from ..states import EventKind, EventSource
from .classify import kind_of, status_code
from .report import Finding, Parsed, event_key
from .webhook import FirstTime, Refused, Webhook, WebhookRequest, json_body, text_of, within

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
MAX_EVENTS = 5000
DROPPED = {"Bounced Address": EventKind.HARD, "Invalid": EventKind.HARD,
           "Spam Reporting Address": EventKind.COMPLAINT, "Spam Content": EventKind.BLOCKED}


class SendGridWebhook(Webhook):
    source = EventSource.SENDGRID
    secret_variable = "NEWSLETTER_SENDGRID_WEBHOOK_KEY"

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridWebhook | None:
        key = (settings.env.get(cls.secret_variable) or settings.sendgrid_public_key or "")
        return cls(settings, key.strip()) if key.strip() else None

    def public_key(self) -> ec.EllipticCurvePublicKey:
        text = self.secret
        try:
            key = serialization.load_pem_public_key(text.encode()) if "BEGIN" in text else \
                serialization.load_der_public_key(base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error, UnsupportedAlgorithm):
            raise ConfigError("sendgrid_public_key: not a public key; copy the verification "
                              "key from SendGrid's Mail Settings, Signed Event Webhook") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ConfigError("sendgrid_public_key: expected SendGrid's ECDSA public key")
        return key

    def verify(self, request: WebhookRequest, first_time: FirstTime) -> None:
        signature, stamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
        if not signature or not stamp:
            raise Refused(401, f"unsigned: {SIGNATURE} and {TIMESTAMP} are required")
        try:
            self.public_key().verify(base64.b64decode(signature, validate=True),
                                     stamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise Refused(403, "the signature does not verify with the configured public "
                               "key") from None
        within(request, stamp, self.settings.webhook_max_age)
        if not first_time("sendgrid", hashlib.sha256(signature.encode()).hexdigest()):
            raise Refused(403, "this signed request was received before: a replay")

    def parse(self, request: WebhookRequest) -> Parsed:
        events = json_body(request.body)
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise Refused(400, "expected a JSON array of event objects, as SendGrid sends")
        if len(events) > MAX_EVENTS:
            raise Refused(413, f"more than {MAX_EVENTS} events in one request")
        parsed = Parsed(summary="SendGrid events")
        for event in events:
            finding = self._finding(event)
            if finding is None:
                parsed.ignored += 1
            else:
                parsed.findings.append(finding)
        return parsed

    def _finding(self, event: dict[str, object]) -> Finding | None:
        name = str(event.get("event", ""))
        reason = text_of(event.get("reason") or event.get("response"))
        status = status_code(text_of(event.get("status"), 20), reason)
        if name == "bounce":
            kind = EventKind.BLOCKED if event.get("type") == "blocked" else kind_of(status)
        elif name == "dropped":
            kind = DROPPED.get(text_of(event.get("reason"), 60))  # type: ignore[assignment]
        elif name == "spamreport":
            kind, status = EventKind.COMPLAINT, ""
        else:
            return None
        if kind is None:
            return None
        token = text_of(event.get(TOKEN_FIELD), 60)
        message_id = text_of(event.get("smtp-id"), 250)
        key = f"sendgrid:{text_of(event.get('sg_event_id'), 60)}" if event.get("sg_event_id") \
            else event_key("sendgrid", sorted((k, str(v)) for k, v in event.items()))
        try:
            when = float(str(event.get("timestamp")))
        except ValueError:
            when = None
        return Finding(kind, self.source, key, text_of(event.get("email"), 254), status,
                       reason or name, (token,) if token else (),
                       (message_id,) if message_id.startswith("<") else (), when)
