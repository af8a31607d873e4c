"""`POST /webhooks/postmark|sendgrid|mailgun|ses`: the mail services' bounces and complaints.

Every request is verified first (inbound/<provider>.py): a bad signature or password, a
request outside the replay window or seen before answers 401/403 and changes nothing. A
verified request is recorded and answered 200 with what became of its events, including
events about messages we cannot match (acknowledged and logged, so that the provider does
not retry them forever). A malformed body answers 400; a provider whose secret (for SES:
`sns_topics`) is not configured, 404; a database locked too long, 503 with Retry-After (the
provider retries).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping

from ..config import Settings
from ..errors import StoreError
from ..inbound.intake import Intake
from ..inbound.mailgun import MailgunWebhook
from ..inbound.postmark import PostmarkWebhook
from ..inbound.sendgrid import SendGridWebhook
from ..inbound.ses import SesWebhook
from ..inbound.webhook import Refused, Webhook, WebhookRequest
from ..states import Disposition

log = logging.getLogger(__name__)
MAX_WEBHOOK_BODY = 1 << 20  # SendGrid batches events; a megabyte holds thousands
PROVIDERS: Mapping[str, type[Webhook]] = {"postmark": PostmarkWebhook,
                                          "sendgrid": SendGridWebhook,
                                          "mailgun": MailgunWebhook,
                                          "ses": SesWebhook}


class WebhookRoutes:
    """The webhook endpoints of one WebApp; one Intake (SQLite connection) per thread."""

    def __init__(self, settings: Settings, write_lock: threading.Lock) -> None:
        self.settings = settings
        self.hooks = {name: kind.from_settings(settings) for name, kind in PROVIDERS.items()}
        self._write_lock = write_lock
        self._local = threading.local()

    def handle(self, name: str, environ: dict[str, object]) -> tuple[int, dict[str, object],
                                                                     list[tuple[str, str]]]:
        """(status, JSON answer, extra headers) for a POST to /webhooks/NAME."""
        hook = self.hooks.get(name)
        if hook is None:
            return 404, {"error": f"no webhook {name!r} is configured here"}, []
        body = _body(environ)
        if body is None:
            return 413, {"error": f"the body must be at most {MAX_WEBHOOK_BODY} bytes, "
                                  "with a Content-Length"}, []
        request = WebhookRequest(_headers(environ), body, time.time())
        try:
            intake = self._intake()
            with self._write_lock:
                hook.verify(request, intake.first_time)
                parsed = hook.parse(request)
                verdicts = intake.record(parsed)
        except Refused as refused:
            log.info("webhook %s refused (%d): %s", name, refused.status, refused.reason)
            return refused.status, {"error": refused.reason}, refused.headers
        except StoreError as exc:
            log.warning("webhook %s: %s", name, exc)
            return 503, {"error": "the database is busy; nothing was changed"}, [
                ("Retry-After", "60")]
        counts = {str(d): 0 for d in (Disposition.RECORDED, Disposition.DUPLICATE,
                                      Disposition.UNMATCHED)}
        for verdict in verdicts:
            counts[str(verdict.disposition)] += 1
        counts["ignored"] = parsed.ignored
        return 200, counts, []

    def _intake(self) -> Intake:
        intake = getattr(self._local, "intake", None)
        if intake is None:
            intake = self._local.intake = Intake(self.settings)
        return intake


def _body(environ: dict[str, object]) -> bytes | None:
    try:
        length = int(str(environ.get("CONTENT_LENGTH") or -1))
    except ValueError:
        return None
    if not 0 <= length <= MAX_WEBHOOK_BODY:
        return None
    return environ["wsgi.input"].read(length) if length else b""  # type: ignore[attr-defined]


def _headers(environ: dict[str, object]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items()
               if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def answer(data: dict[str, object]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode() + b"\n"
