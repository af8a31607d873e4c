"""`mailgun://DOMAIN[?region=eu]`: Mailgun's messages API with recipient variables.

    mailgun://mg.example.org                     https://api.mailgun.net, domain mg.example.org
    mailgun://mg.example.org?region=eu           https://api.eu.mailgun.net (EU domains)
    mailgun://mg.example.org?api=127.0.0.1:8025&tls=off   a local test server

POST /v3/DOMAIN/messages as multipart/form-data (as in Mailgun's curl -F examples; no
field needs escaping that way), with HTTP basic auth `api:KEY`. One request
carries up to 1,000 recipients (documented batch-sending limit): `to` repeated once per
recipient, and `recipient-variables`, a JSON object keyed by plain address, which makes
Mailgun send each recipient a separate message with `%recipient.KEY%` replaced by that
recipient's value. The text uses `%recipient.name%` (the raw value), the HTML
`%recipient.html:name%` (the value HTML-escaped).

Per-recipient headers use the same variables in `h:` fields: `h:List-Unsubscribe` is
`%recipient.h:List-Unsubscribe%` and `h:Message-Id` `%recipient.h:Message-Id%`. Mailgun's
batch-sending guide shows recipient variables in the subject; that they work in `h:`
headers too is what django-anymail relies on for its per-recipient headers on Mailgun.
List-Unsubscribe-Post, List-Id and Reply-To are the same for everyone. With a return path,
`v:nl_delivery` carries each delivery's token the same way; Mailgun's webhooks return it in
`user-variables` (inbound/mailgun.py). The `h:`, `o:` and
`v:` options are limited to 16 kB in all, which these few headers stay far below.

The answer is 200 `{"id": "<...>", "message": "Queued. Thank you."}`: every recipient of
the batch was taken, under that one id; bounces arrive later, by webhook. Errors are
`{"message": "..."}`; 404 usually means a domain of the other region.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Sequence
from urllib.parse import SplitResult, quote

import requests

from ..config import Settings
from ..envelope import TOKEN_FIELD, MessageSource, Personalised
from ..errors import ConfigError, TransportError
from .base import Result, Status
from .http import (
    ApiRequest,
    Endpoint,
    HttpTransport,
    Template,
    api_endpoint,
    display_address,
    unfolded,
    url_options,
)

REGIONS = {"us": "api.mailgun.net", "eu": "api.eu.mailgun.net"}
PER_RECIPIENT_HEADERS = ("List-Unsubscribe", "Message-Id")
COMMON_HEADERS = ("Reply-To", "List-Unsubscribe-Post", "List-Id")


class MailgunTransport(HttpTransport):
    schemes = ("mailgun",)
    max_batch = 1000  # recipients per request, documented
    default_batch = 500
    provider = "Mailgun"
    key_help = "a Mailgun API key (or domain sending key) for the sending domain"

    def __init__(self, endpoint: Endpoint, domain: str) -> None:
        super().__init__(endpoint)
        self.domain = domain
        self._content: _Content | None = None

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> MailgunTransport:
        domain = url.hostname or ""
        if not domain or domain == "default" or url.port is not None:
            raise ConfigError(f"transport {url.scheme}://{domain}: expected your sending "
                              "domain, as in mailgun://mg.example.org (or ?region=eu)")
        options = url_options(url, ("region", "api"))
        region = options.get("region", "us")
        if region not in REGIONS:
            raise ConfigError(f"transport mailgun://{domain}: region={region!r}; expected "
                              + " or ".join(REGIONS))
        host = options.get("api") or REGIONS[region]
        return cls(api_endpoint(url, settings, host=host, options=options), domain)

    @property
    def description(self) -> str:
        return f"{super().description} (domain {self.domain})"

    def authenticate(self, session: requests.Session) -> None:
        session.auth = ("api", self.endpoint.api_key)

    def build_request(self, batch: Sequence[Personalised]) -> ApiRequest:
        factory = batch[0].source
        if self._content is None or self._content.factory is not factory:
            self._content = _Content(factory)
        content = self._content
        variables = {m.recipient.email: content.variables(m) for m in batch}
        fields = [("to", display_address(m.recipient.name, m.recipient.email)) for m in batch]
        fields.append(("recipient-variables",
                       json.dumps(variables, ensure_ascii=False, separators=(",", ":"))))
        body = content.fixed + content.form.encode(fields) + content.form.end
        return ApiRequest(f"/v3/{quote(self.domain, safe='')}/messages", body,
                          content.form.content_type)

    def parse_response(self, response: requests.Response,
                       batch: Sequence[Personalised]) -> list[Result]:
        try:
            answer = response.json()
            queued_id, message = answer["id"], answer["message"]
        except (ValueError, KeyError, TypeError):
            # e.g. "Mailgun Magnificent API", the answer to a wrong path: nothing was queued
            raise TransportError(f"Mailgun answered without a message id "
                                 f"({self.reply(response, response.text)}); check the domain "
                                 "and the api= option", response.text[:300]) from None
        reply = self.redact(f"{response.status_code} Mailgun: {message} (id {queued_id})")
        return [Result(Status.SENT, reply) for _ in batch]

    def error_text(self, response: requests.Response, batch: Sequence[Personalised]) -> str:
        try:
            return str(response.json()["message"])
        except (ValueError, KeyError, TypeError):
            return response.text

    def hint(self, status: int) -> str:
        if status == 404:
            return (f"; is {self.domain} a Mailgun domain of this region? EU domains need "
                    f"mailgun://{self.domain}?region=eu")
        return super().hint(status)


class _Content:
    """The form fields every request of one issue shares, encoded once per run."""

    def __init__(self, factory: MessageSource) -> None:
        self.factory = factory
        self.text, self.html = Template(factory.text_template), Template(factory.html_template)
        headers = factory.common_headers
        fields = [("from", headers["From"]), ("subject", factory.subject),
                  ("text", self.text.rewrite(lambda n: f"%recipient.{n}%")),
                  ("html", self.html.rewrite(lambda n: f"%recipient.html:{n}%"))]
        fields += [(f"h:{name}", unfolded(headers[name]))
                   for name in COMMON_HEADERS if name in headers]
        # A notice (a sign-up's confirmation) is no mailing: it has no List-* headers.
        self.per_recipient = [name for name in PER_RECIPIENT_HEADERS
                              if name != "List-Unsubscribe" or "List-Id" in headers]
        fields += [(f"h:{name}", f"%recipient.h:{name}%") for name in self.per_recipient]
        # The delivery's token as a custom variable: webhooks return it in user-variables.
        fields.append((f"v:{TOKEN_FIELD}", f"%recipient.{TOKEN_FIELD}%"))
        self.form = _Form()
        self.fixed = self.form.encode(fields)

    def variables(self, message: Personalised) -> dict[str, str]:
        values = message.values
        variables = {n: values.get(n, "") for n in self.text.names}
        variables.update({f"html:{n}": html.escape(values.get(n, "")) for n in self.html.names})
        if "List-Unsubscribe" in self.per_recipient:
            variables["h:List-Unsubscribe"] = unfolded(message.headers["List-Unsubscribe"])
        variables["h:Message-Id"] = message.message_id
        variables[TOKEN_FIELD] = message.token
        return variables


class _Form:
    """multipart/form-data: each value as it is, between boundaries.

    The boundary holds 128 random bits chosen for this run, so no subscriber's value can
    contain it by chance or design.
    """

    def __init__(self) -> None:
        boundary = f"newsletter-{secrets.token_hex(16)}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._start = f"--{boundary}\r\n".encode()
        self.end = f"--{boundary}--\r\n".encode()

    def encode(self, fields: list[tuple[str, str]]) -> bytes:
        return b"".join(self._start + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'
                        .encode() + value.encode() + b"\r\n" for name, value in fields)
