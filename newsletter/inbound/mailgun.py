"""`POST /webhooks/mailgun`: Mailgun's webhooks, signed with HMAC-SHA256.

Each request is a JSON object: `signature` {timestamp, token, signature} and `event-data`.
The signature is the hex HMAC-SHA256 of `timestamp + token` keyed with the HTTP webhook
signing key (NEWSLETTER_MAILGUN_WEBHOOK_KEY). A timestamp outside `webhook_max_age`, or a
token seen before, is a replay. Events: failed with severity permanent (a bounce, by its
code; `suppress-bounce` is an address Mailgun already knows dead) or temporary (soft,
except greylisting), and complained; the others change nothing. The delivery is named by
the token in `user-variables` (the transport's `v:` variable), or by the Message-ID in
`message.headers`.
"""

from __future__ import annotations

import hashlib
import hmac

from ..envelope import TOKEN_FIELD
from ..states import EventKind, EventSource
from .classify import kind_of, status_code
from .report import Finding, Parsed
from .webhook import FirstTime, Refused, Webhook, WebhookRequest, json_body, text_of, within


class MailgunWebhook(Webhook):
    source = EventSource.MAILGUN
    secret_variable = "NEWSLETTER_MAILGUN_WEBHOOK_KEY"

    def verify(self, request: WebhookRequest, first_time: FirstTime) -> None:
        body = _object(json_body(request.body))
        signed = body.get("signature")
        if not isinstance(signed, dict) or not all(
                isinstance(signed.get(k), (str, int)) for k in ("timestamp", "token",
                                                                "signature")):
            raise Refused(401, "unsigned: expected signature {timestamp, token, signature}")
        timestamp, token = str(signed["timestamp"]), str(signed["token"])
        expected = hmac.new(self.secret.encode(), (timestamp + token).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(signed["signature"]).lower()):
            raise Refused(403, "the signature does not verify with the webhook signing key")
        within(request, timestamp, self.settings.webhook_max_age)
        if not first_time("mailgun", token):
            raise Refused(403, "this signature's token was used before: a replay")

    def parse(self, request: WebhookRequest) -> Parsed:
        data = _object(json_body(request.body)).get("event-data")
        if not isinstance(data, dict):
            raise Refused(400, "expected event-data, as Mailgun sends")
        name, severity = str(data.get("event", "")), str(data.get("severity", ""))
        status_block = data.get("delivery-status")
        delivery = status_block if isinstance(status_block, dict) else {}
        reply = text_of(" ".join(str(delivery.get(k) or "") for k in
                                 ("code", "message", "description")))
        status = status_code(text_of(delivery.get("enhanced-code"), 20), reply)
        reason = str(data.get("reason", ""))
        if name == "failed" and severity == "permanent":
            kind = EventKind.HARD if reason == "suppress-bounce" else kind_of(status or "5.0.0")
            status = status or ("5.1.1" if kind is EventKind.HARD else "5.0.0")
        elif name == "failed" and severity == "temporary" and reason != "greylisted":
            kind = EventKind.BLOCKED if kind_of(status) is EventKind.BLOCKED else EventKind.SOFT
            status = status or "4.0.0"
        elif name == "complained":
            kind, status = EventKind.COMPLAINT, ""
        else:
            return Parsed(ignored=1, summary=f"Mailgun {name}")
        variables = data.get("user-variables")
        token = text_of(variables.get(TOKEN_FIELD), 60) if isinstance(variables, dict) else ""
        message = data.get("message")
        headers = message.get("headers") if isinstance(message, dict) else None
        message_id = text_of(headers.get("message-id"), 250) if isinstance(headers, dict) \
            else ""
        if message_id and not message_id.startswith("<"):
            message_id = f"<{message_id}>"
        try:
            when = float(str(data.get("timestamp")))
        except ValueError:
            when = None
        finding = Finding(kind, self.source, f"mailgun:{text_of(data.get('id'), 60)}:{when}",
                          text_of(data.get("recipient"), 254), status, reply or reason,
                          (token,) if token else (), (message_id,) if message_id else (), when)
        return Parsed([finding], summary=f"Mailgun {name}")


def _object(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise Refused(400, "expected a JSON object, as Mailgun sends")
    return body
