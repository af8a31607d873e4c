"""`sendgrid://default`: SendGrid's v3 Mail Send, one request for a whole batch.

    sendgrid://default                       https://api.sendgrid.com
    sendgrid://api.eu.sendgrid.com           SendGrid's EU endpoint (EU subusers)
    sendgrid://127.0.0.1:8025?tls=off        a local test server

POST /v3/mail/send with `Authorization: Bearer KEY`. The bodies are sent once per request
with substitution tags, and each recipient is one entry of `personalizations` carrying its
own `substitutions` and `headers`. Documented limits used: at most 1,000 personalizations
and 1,000 recipients a request ("Mail Send" limitations); a `to.name` may hold neither `,`
nor `;` (they become spaces); From, To, Subject, Reply-To and Content-Type may not be set
as headers.

SendGrid applies every substitution to both parts, so the text and the HTML use distinct
tags: `%%name%%` in the text (the raw value) and `%%name.html%%` in the HTML (the value
HTML-escaped). Headers: List-Unsubscribe and Message-ID per personalization;
List-Unsubscribe-Post and List-Id once for the request. With a return path, each
personalization's `custom_args` carry the delivery's token, which every Event Webhook
event returns (inbound/sendgrid.py).

The answer is 202 Accepted with an empty body and an `X-Message-Id` header: every
recipient of the batch was taken, and nothing more is known per recipient (bounces arrive
later, by webhook). A 200 means sandbox mode, where nothing is delivered: the run stops.
Errors come as `{"errors": [{"message", "field"}]}`; a field `personalizations.N...` is
shown with the address of recipient N.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from email.utils import getaddresses, parseaddr
from urllib.parse import SplitResult

import requests

from ..config import Settings
from ..envelope import TOKEN_FIELD, MessageSource, Personalised
from ..errors import OutcomeUnknown, TransportError
from .base import Result, Status
from .http import (
    ApiRequest,
    Endpoint,
    HttpTransport,
    Template,
    api_endpoint,
    unfolded,
    url_host,
    url_options,
)

_NAME_UNSAFE = re.compile(r"\s*[,;]\s*")
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)")
COMMON_HEADERS = ("List-Unsubscribe-Post", "List-Id")


class SendGridTransport(HttpTransport):
    schemes = ("sendgrid",)
    max_batch = 1000  # personalizations (each one recipient) per request, documented
    default_batch = 500
    provider = "SendGrid"
    key_help = "a SendGrid API key with the Mail Send permission"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._content: _Content | None = None

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> SendGridTransport:
        options = url_options(url, ())
        return cls(api_endpoint(url, settings, host=url_host(url, "api.sendgrid.com"),
                                options=options))

    def authenticate(self, session: requests.Session) -> None:
        session.headers["Authorization"] = f"Bearer {self.endpoint.api_key}"

    def build_request(self, batch: Sequence[Personalised]) -> ApiRequest:
        factory = batch[0].source
        if self._content is None or self._content.factory is not factory:
            self._content = _Content(factory)
        content = self._content
        personalizations = json.dumps([content.personalization(m) for m in batch],
                                      ensure_ascii=False, separators=(",", ":"))
        body = b'{"personalizations":' + personalizations.encode() + b"," + content.rest
        return ApiRequest("/v3/mail/send", body, "application/json")

    def parse_response(self, response: requests.Response,
                       batch: Sequence[Personalised]) -> list[Result]:
        if response.status_code == 200:
            raise TransportError("SendGrid answered 200: the request is valid but in sandbox "
                                 "mode, so nothing is delivered; turn sandbox mode off",
                                 self.reply(response, response.text))
        if response.status_code != 202:
            raise OutcomeUnknown(f"SendGrid answered {self.reply(response, response.text)}, "
                                 "not 202 Accepted: cannot tell whether the batch was queued")
        reply = f"202 Accepted by SendGrid (X-Message-Id {response.headers.get('X-Message-Id')})"
        return [Result(Status.SENT, reply) for _ in batch]

    def error_text(self, response: requests.Response, batch: Sequence[Personalised]) -> str:
        try:
            errors = response.json()["errors"]
            parts = []
            for error in errors:
                where = str(error.get("field") or "")
                index = _PERSONALIZATION.match(where)
                if index and int(index.group(1)) < len(batch):
                    where += f" ({batch[int(index.group(1))].recipient.email})"
                parts.append(f"{where}: {error.get('message')}" if where
                             else str(error.get("message")))
            return "; ".join(parts)
        except (ValueError, KeyError, TypeError, AttributeError):
            return response.text


class _Content:
    """The request body minus its personalizations, serialised once per run."""

    def __init__(self, factory: MessageSource) -> None:
        self.factory = factory
        self.text, self.html = Template(factory.text_template), Template(factory.html_template)
        headers = factory.common_headers
        name, address = parseaddr(factory.sender)
        rest: dict[str, object] = {"from": _contact(name, address)}
        reply_to = getaddresses([factory.reply_to or ""])
        reply_to = [_contact(n, a) for n, a in reply_to if a]
        if len(reply_to) == 1:
            rest["reply_to"] = reply_to[0]
        elif reply_to:
            rest["reply_to_list"] = reply_to
        rest["subject"] = factory.subject
        rest["content"] = [
            {"type": "text/plain", "value": self.text.rewrite(lambda n: f"%%{n}%%")},
            {"type": "text/html", "value": self.html.rewrite(lambda n: f"%%{n}.html%%")}]
        rest["headers"] = {name: unfolded(headers[name]) for name in COMMON_HEADERS
                           if name in headers}  # a notice has none
        self.rest = json.dumps(rest, ensure_ascii=False, separators=(",", ":"))[1:].encode()

    def personalization(self, message: Personalised) -> dict[str, object]:
        values = message.values
        substitutions = {f"%%{n}%%": values.get(n, "") for n in self.text.names}
        substitutions.update({f"%%{n}.html%%": html.escape(values.get(n, ""))
                              for n in self.html.names})
        recipient = message.recipient
        personalization: dict[str, object] = {
            "to": [_contact(recipient.name, recipient.email)],
            "substitutions": substitutions,
            "headers": {**{name: unfolded(message.headers[name])
                           for name in ("List-Unsubscribe",) if name in message.headers},
                        "Message-ID": message.message_id}}
        if message.token:  # custom_args come back in every Event Webhook event
            personalization["custom_args"] = {TOKEN_FIELD: message.token}
        return personalization


def _contact(name: str, address: str) -> dict[str, str]:
    name = _NAME_UNSAFE.sub(" ", name).strip()
    return {"email": address, "name": name} if name else {"email": address}
