"""`postmark://default?stream=broadcast`: Postmark's batch API, one message per recipient.

    postmark://default?stream=broadcast              https://api.postmarkapp.com
    postmark://127.0.0.1:8025?stream=broadcast&tls=off   a local test server

POST /email/batch with a JSON array of messages and the server token in
`X-Postmark-Server-Token`. Documented limits used: at most 500 messages and 50 MB per
request ("Send batch emails" in Postmark's user guide). Postmark has no per-recipient
substitution outside its stored templates, so each message carries its own bodies, filled
here (HTML values escaped): a request weighs about HTML size x batch, hence 100 a request
by default. A newsletter belongs on a broadcast message stream: `stream=` names it
(default `broadcast`, the ID of the stream Postmark creates).

The answer is a 200 with one result per message, in the same order. ErrorCode 0 is
accepted (its MessageID goes into the ledger's reply); 406 is an inactive recipient (hard
bounce, spam complaint or manual suppression) and 300 naming the To address an invalid
one: both fail that recipient and suppress the address. Any other code fails the message,
unless every message of the batch got it, which means a problem with the account or the
sender (e.g. 400 "Sender signature not found"): then the run stops and nothing counts.

Headers: List-Unsubscribe (the recipient's own link), List-Unsubscribe-Post, List-Id and
Message-ID travel in `Headers`; From, To, Reply-To and Subject in their own fields.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from urllib.parse import SplitResult

import requests

from ..config import Settings
from ..envelope import TOKEN_FIELD, MessageSource, Personalised
from ..errors import ConfigError, OutcomeUnknown, TransportError
from .base import Result, Status
from .http import (
    ApiRequest,
    Endpoint,
    HttpTransport,
    Template,
    api_endpoint,
    display_address,
    unfolded,
    url_host,
    url_options,
)

MAX_PAYLOAD = 50_000_000  # bytes per batch request, documented
INACTIVE = 406  # the recipient bounced, complained or was suppressed: never again
INVALID_REQUEST = 300  # dead when it names the To address
_NAMES_TO = re.compile(r"'To'")
COMMON_HEADERS = ("List-Unsubscribe-Post", "List-Id")


class PostmarkTransport(HttpTransport):
    schemes = ("postmark",)
    max_batch = 500  # messages per batch request, documented
    default_batch = 100
    provider = "Postmark"
    key_help = "the server API token of the Postmark server that sends the newsletter"

    def __init__(self, endpoint: Endpoint, stream: str) -> None:
        super().__init__(endpoint)
        self.stream = stream
        self._content: _Content | None = None

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> PostmarkTransport:
        options = url_options(url, ("stream",))
        endpoint = api_endpoint(url, settings, host=url_host(url, "api.postmarkapp.com"),
                                options=options)
        return cls(endpoint, options.get("stream") or "broadcast")

    @property
    def description(self) -> str:
        return f"{super().description} (message stream {self.stream})"

    def authenticate(self, session: requests.Session) -> None:
        session.headers["X-Postmark-Server-Token"] = self.endpoint.api_key

    def build_request(self, batch: Sequence[Personalised]) -> ApiRequest:
        factory = batch[0].source
        if self._content is None or self._content.factory is not factory:
            self._content = _Content(factory, self.stream)
        body = b"[" + b",".join(self._content.message(m) for m in batch) + b"]"
        if len(body) > MAX_PAYLOAD:
            raise ConfigError(f"Postmark takes at most {MAX_PAYLOAD // 1_000_000} MB a request; "
                              f"{len(batch)} messages make {len(body) / 1e6:.0f} MB. Set "
                              f"batch_size = {max(1, len(batch) * MAX_PAYLOAD // len(body))} "
                              "in the [send] section of newsletter.toml")
        return ApiRequest("/email/batch", body, "application/json")

    def parse_response(self, response: requests.Response,
                       batch: Sequence[Personalised]) -> list[Result]:
        try:
            items = response.json()
            answers = [(int(item.get("ErrorCode", 0)), str(item.get("Message", "")),
                        item.get("MessageID"), item.get("To")) for item in items]
        except (ValueError, TypeError, AttributeError):
            answers = []
        if len(answers) != len(batch):
            raise OutcomeUnknown(f"Postmark accepted the request but its answer does not say "
                                 f"what became of the {len(batch)} messages "
                                 f"({self.reply(response, response.text)})")
        for message, (code, _, _, to) in zip(batch, answers, strict=True):
            if code == 0 and to and message.recipient.email.lower() not in to.lower():
                raise OutcomeUnknown(f"Postmark's answer lists {to!r} where "
                                     f"{message.recipient.email!r} was sent; cannot tell "
                                     "which messages were accepted")
        codes = {code for code, _, _, _ in answers}
        if len(codes) == 1 and not any(_dead(code, text) for code, text, _, _ in answers) \
                and 0 not in codes:
            code, text, _, _ = answers[0]
            raise TransportError(f"Postmark refused every message of the batch: ErrorCode "
                                 f"{code}: {self.redact(text)}", f"{code} {self.redact(text)}")
        return [_result(code, self.redact(text), message_id)
                for code, text, message_id, _ in answers]

    def error_text(self, response: requests.Response, batch: Sequence[Personalised]) -> str:
        try:
            answer = response.json()
            return f"ErrorCode {answer['ErrorCode']}: {answer['Message']}"
        except (ValueError, KeyError, TypeError):
            return response.text


class _Content:
    """What every message of one issue shares, prepared once per run.

    The bodies are JSON-escaped here, once, in the pieces between their placeholders: a
    message is then those pieces joined around its own escaped values. JSON escapes
    character by character, so this is exactly what json.dumps would give, at a fraction
    of the cost of escaping some 50 KB per recipient.
    """

    def __init__(self, factory: MessageSource, stream: str) -> None:
        self.factory = factory
        headers = factory.common_headers
        self.html, self.text = Template(factory.html_template), Template(factory.text_template)
        self.html_pieces = [_json(literal)[1:-1] for literal in self.html.literals]
        self.text_pieces = [_json(literal)[1:-1] for literal in self.text.literals]
        self.fixed = {"From": headers["From"], "Subject": factory.subject,
                      "MessageStream": stream}
        if "Reply-To" in headers:
            self.fixed["ReplyTo"] = headers["Reply-To"]
        self.headers = [{"Name": name, "Value": unfolded(headers[name])}
                        for name in COMMON_HEADERS if name in headers]  # none in a notice

    def message(self, message: Personalised) -> bytes:
        """One message object of the batch array, as JSON."""
        recipient = message.recipient
        fields = {**self.fixed, "To": display_address(recipient.name, recipient.email),
                  "Headers": [*({"Name": name, "Value": unfolded(message.headers[name])}
                                for name in ("List-Unsubscribe",) if name in message.headers),
                              {"Name": "Message-ID", "Value": message.message_id},
                              *self.headers]}
        if message.token:  # comes back in the Bounce and SpamComplaint webhooks
            fields["Metadata"] = {TOKEN_FIELD: message.token}
        head = _json(fields)
        return b"".join((head[:-1], b',"HtmlBody":"',
                         _filled(self.html, self.html_pieces, message.values, escape=True),
                         b'","TextBody":"',
                         _filled(self.text, self.text_pieces, message.values, escape=False),
                         b'"}'))


def _filled(template: Template, pieces: list[bytes], values: Mapping[str, str], *,
            escape: bool) -> bytes:
    """A body's JSON string content with one recipient's values in its placeholders."""
    out = [pieces[0]]
    for name, piece in zip(template.names, pieces[1:], strict=True):
        value = values.get(name, "")
        out.append(_json(html.escape(value) if escape else value)[1:-1])
        out.append(piece)
    return b"".join(out)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _dead(code: int, text: str) -> bool:
    """Postmark says the address itself cannot receive mail."""
    return code == INACTIVE or (code == INVALID_REQUEST and bool(_NAMES_TO.search(text)))


def _result(code: int, text: str, message_id: object) -> Result:
    if code == 0:
        return Result(Status.SENT, f"Postmark {code} {text} (MessageID {message_id})")
    return Result(Status.FAILED, f"Postmark ErrorCode {code}: {text}",
                  suppress=_dead(code, text))
