"""Stand-ins for Postmark, SendGrid and Mailgun on 127.0.0.1, for the tests and the benchmark.

Each provider checks every request against its documented shape (method, path, auth
header, content type, fields, batch size) and answers with its documented bodies; a
request that does not match gets a 400 and is logged with its problems, so a test fails on
any drift. Misbehaviour is scripted per request number: a status with headers (429 with
Retry-After, 500...), a delay before answering, and per-recipient Postmark ErrorCodes.
Every request is logged with the recipients it carried and what the server decided, at
once, before any delay: a test compares the server's own log with the ledger, even when
the client was killed while waiting for the answer.

Run as a program it serves one provider until killed (tests/bench/bench_api.py does):

    python tests/api_server.py sendgrid --port 8025 --key KEY
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOMAIN = "mg.example.org"


@dataclass
class Answer:
    """A scripted answer: status, extra headers, and the message for the documented body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted failure"


@dataclass
class Behaviour:
    """How the server misbehaves; the defaults accept everything at once."""

    answers: dict[int, Answer] = field(default_factory=dict)  # request number (from 0)
    delays: dict[int, float] = field(default_factory=dict)  # request number -> seconds
    delay: float = 0.0  # before answering any other request
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)  # Postmark per address


@dataclass
class Received:
    """One request as the server saw it, and what it decided to answer."""

    number: int
    at: float  # time.monotonic() on arrival
    recipients: list[str]
    payload: object
    status: int
    accepted: list[str]  # the recipients the answer accepts
    problems: list[str]


@dataclass
class Rendered:
    """One recipient's message as the provider would build it from a request."""

    email: str
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]


@dataclass
class Parsed:
    recipients: list[str]
    payload: object
    problems: list[str]
    authorised: bool = True


def _json(body: bytes, problems: list[str]) -> object:
    try:
        return json.loads(body)
    except ValueError as exc:
        problems.append(f"body is not JSON: {exc}")
        return None


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in value.items())


def _form_fields(content_type: str, body: bytes, problems: list[str]) -> dict[str, list[str]]:
    """The fields of a multipart/form-data body, each name with its values in order."""
    boundary = re.fullmatch(r"multipart/form-data; boundary=([-\w]+)", content_type)
    if boundary is None:
        problems.append(f"Content-Type {content_type!r}: expected multipart/form-data")
        return {}
    fields: dict[str, list[str]] = {}
    delimiter = b"--" + boundary[1].encode()
    parts = body.split(delimiter)
    if parts[0] != b"" or parts[-1] != b"--\r\n":
        problems.append("multipart body not framed by its boundary")
    for part in parts[1:-1]:
        head, _, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'Content-Disposition: form-data; name="([^"]+)"', head)
        if name is None or not value.endswith(b"\r\n"):
            problems.append(f"malformed part {head[:60]!r}")
            continue
        fields.setdefault(name[1].decode(), []).append(value[:-2].decode("utf-8"))
    return fields


class Postmark:
    """POST /email/batch: a JSON array of up to 500 messages; X-Postmark-Server-Token."""

    name = "postmark"
    FIELDS = {"From", "To", "Cc", "Bcc", "Subject", "Tag", "HtmlBody", "TextBody", "ReplyTo",
              "Headers", "TrackOpens", "TrackLinks", "Metadata", "Attachments",
              "MessageStream"}

    def url(self, port: int) -> str:
        return f"postmark://127.0.0.1:{port}?stream=broadcast"

    def parse(self, key: str, path: str, headers: Message, body: bytes) -> Parsed:
        problems: list[str] = []
        if path != "/email/batch":
            problems.append(f"path {path}, expected /email/batch")
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            problems.append("Content-Type is not application/json")
        if "application/json" not in (headers.get("Accept") or ""):
            problems.append("Accept does not include application/json")
        if len(body) > 50_000_000:
            problems.append("payload over 50 MB")
        items = _json(body, problems)
        recipients = []
        if not isinstance(items, list) or not 1 <= len(items) <= 500:
            problems.append("expected a JSON array of 1 to 500 messages")
            items = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(f"[{n}] is not an object")
                continue
            if set(item) - self.FIELDS:
                problems.append(f"[{n}] unknown fields {sorted(set(item) - self.FIELDS)}")
            for name in ("From", "To", "Subject", "MessageStream"):
                if not isinstance(item.get(name), str) or not item[name]:
                    problems.append(f"[{n}] {name} missing")
            if not (item.get("HtmlBody") or item.get("TextBody")):
                problems.append(f"[{n}] neither HtmlBody nor TextBody")
            if not all(isinstance(h, dict) and set(h) == {"Name", "Value"}
                       for h in item.get("Headers", [])):
                problems.append(f"[{n}] Headers must be [{{Name, Value}}]")
            recipients.append(parseaddr(str(item.get("To", "")))[1])
        return Parsed(recipients, items, problems,
                      headers.get("X-Postmark-Server-Token") == key)

    def success(self, parsed: Parsed, behaviour: Behaviour) -> tuple[int, dict[str, str],
                                                                      bytes, list[str]]:
        answers, accepted = [], []
        for item, address in zip(parsed.payload, parsed.recipients, strict=True):  # type: ignore[call-overload]
            code, message = behaviour.codes.get(address, (0, "OK"))
            if code:
                answers.append({"ErrorCode": code, "Message": message})
                continue
            accepted.append(address)
            answers.append({"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4()),
                            "SubmittedAt": "2020-01-15T09:00:00.0000000-05:00",
                            "To": item["To"]})
        return 200, {"Content-Type": "application/json"}, json.dumps(answers).encode(), \
            accepted

    def error(self, status: int, message: str) -> tuple[dict[str, str], bytes]:
        code = {401: 10, 422: 300, 429: 429}.get(status, 0)
        if status == 401:
            message = "Request does not contain a valid Server token."
        return {"Content-Type": "application/json"}, \
            json.dumps({"ErrorCode": code, "Message": message}).encode()

    def render(self, received: Received) -> list[Rendered]:
        out = []
        for item in received.payload:  # type: ignore[attr-defined]
            headers = {h["Name"]: h["Value"] for h in item.get("Headers", [])}
            headers.update({"From": item["From"], "Reply-To": item.get("ReplyTo", "")})
            out.append(Rendered(parseaddr(item["To"])[1], item["To"], item["Subject"],
                                item.get("TextBody", ""), item.get("HtmlBody", ""), headers))
        return out


class SendGrid:
    """POST /v3/mail/send: one message, up to 1,000 personalizations; Bearer key; 202."""

    name = "sendgrid"
    RESERVED = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}

    def url(self, port: int) -> str:
        return f"sendgrid://127.0.0.1:{port}"

    def parse(self, key: str, path: str, headers: Message, body: bytes) -> Parsed:
        problems: list[str] = []
        if path != "/v3/mail/send":
            problems.append(f"path {path}, expected /v3/mail/send")
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            problems.append("Content-Type is not application/json")
        data = _json(body, problems)
        if not isinstance(data, dict):
            return Parsed([], data, problems + ["expected a JSON object"])
        people = data.get("personalizations")
        if not isinstance(people, list) or not 1 <= len(people) <= 1000:
            problems.append("personalizations: expected 1 to 1000")
            people = []
        recipients = []
        for n, person in enumerate(people):
            to = person.get("to") if isinstance(person, dict) else None
            if not isinstance(to, list) or not to or not all(
                    isinstance(t, dict) and isinstance(t.get("email"), str) for t in to):
                problems.append(f"personalizations.{n}.to: each needs an email")
                continue
            if any(re.search("[,;]", t.get("name", "")) for t in to):
                problems.append(f"personalizations.{n}.to.name: may not contain , or ;")
            for name in ("substitutions", "headers", "custom_args"):
                if name in person and not _string_map(person[name]):
                    problems.append(f"personalizations.{n}.{name}: strings only")
            if set(map(str.lower, person.get("headers", {}))) & self.RESERVED:
                problems.append(f"personalizations.{n}.headers: reserved header")
            recipients += [t["email"] for t in to]
        if len(recipients) > 1000:
            problems.append("more than 1000 recipients")
        if len({r.lower() for r in recipients}) != len(recipients):
            problems.append("an address appears more than once")
        if not isinstance(data.get("from"), dict) or "email" not in data["from"]:
            problems.append("from.email missing")
        if not data.get("subject"):
            problems.append("subject missing")
        types = [c.get("type") for c in data.get("content", []) if isinstance(c, dict)]
        if not types or (len(types) > 1 and types[0] != "text/plain"):
            problems.append(f"content types {types}: text/plain must come first")
        if not _string_map(data.get("headers", {})) or \
                set(map(str.lower, data.get("headers", {}))) & self.RESERVED:
            problems.append("headers: strings only, none reserved")
        authorised = headers.get("Authorization") == f"Bearer {key}"
        return Parsed(recipients, data, problems, authorised)

    def success(self, parsed: Parsed, behaviour: Behaviour) -> tuple[int, dict[str, str],
                                                                      bytes, list[str]]:
        return 202, {"X-Message-Id": uuid.uuid4().hex[:22]}, b"", list(parsed.recipients)

    def error(self, status: int, message: str) -> tuple[dict[str, str], bytes]:
        if status == 401:
            message = "The provided authorization grant is invalid, expired, or revoked"
        return {"Content-Type": "application/json"}, json.dumps(
            {"errors": [{"field": None, "message": message, "help": None}]}).encode()

    def render(self, received: Received) -> list[Rendered]:
        data = received.payload
        assert isinstance(data, dict)
        content = {c["type"]: c["value"] for c in data["content"]}
        out = []
        for person in data["personalizations"]:
            def apply(text: str, person: dict = person) -> str:  # type: ignore[type-arg]
                for tag, value in person.get("substitutions", {}).items():
                    text = text.replace(tag, value)
                return text

            to = person["to"][0]
            headers = {**data.get("headers", {}), **person.get("headers", {})}
            reply_to = data.get("reply_to", {}).get("email", "")
            headers.update({"From": data["from"]["email"], "Reply-To": reply_to})
            out.append(Rendered(to["email"], f"{to.get('name', '')} <{to['email']}>",
                                apply(data["subject"]), apply(content.get("text/plain", "")),
                                apply(content.get("text/html", "")), headers))
        return out


class Mailgun:
    """POST /v3/DOMAIN/messages: form fields, `to` repeated, recipient-variables; api:KEY."""

    name = "mailgun"

    def url(self, port: int) -> str:
        return f"mailgun://{DOMAIN}?api=127.0.0.1:{port}"

    def parse(self, key: str, path: str, headers: Message, body: bytes) -> Parsed:
        problems: list[str] = []
        if path != f"/v3/{DOMAIN}/messages":
            problems.append(f"path {path}, expected /v3/{DOMAIN}/messages")
        fields = _form_fields(headers.get("Content-Type") or "", body, problems)
        for name in ("from", "subject", "recipient-variables"):
            if len(fields.get(name, [])) != 1:
                problems.append(f"{name}: expected once")
        if not (fields.get("text") or fields.get("html")):
            problems.append("neither text nor html")
        to = [parseaddr(t)[1] for t in fields.get("to", [])]
        if not 1 <= len(to) <= 1000:
            problems.append(f"{len(to)} recipients; expected 1 to 1000")
        variables = _json(fields.get("recipient-variables", ["{}"])[0].encode(), problems)
        if not isinstance(variables, dict) or set(to) - set(variables):
            problems.append("recipient-variables: every recipient needs its variables")
        expected = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
        return Parsed(to, {"fields": fields, "variables": variables}, problems,
                      headers.get("Authorization") == expected)

    def success(self, parsed: Parsed, behaviour: Behaviour) -> tuple[int, dict[str, str],
                                                                      bytes, list[str]]:
        body = {"id": f"<20200115090000.{uuid.uuid4().hex[:12]}@{DOMAIN}>",
                "message": "Queued. Thank you."}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode(), \
            list(parsed.recipients)

    def error(self, status: int, message: str) -> tuple[dict[str, str], bytes]:
        if status == 401:
            return {"Content-Type": "text/plain"}, b"Forbidden"
        return {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()

    def render(self, received: Received) -> list[Rendered]:
        fields, variables = received.payload["fields"], received.payload["variables"]  # type: ignore[index]
        out = []
        for to in fields["to"]:
            address = parseaddr(to)[1]
            mine = variables[address]

            def apply(text: str, mine: dict = mine) -> str:  # type: ignore[type-arg]
                return re.sub(r"%recipient\.([^%]+)%", lambda m: mine.get(m[1], ""), text)

            headers = {k[2:]: apply(v[0]) for k, v in fields.items() if k.startswith("h:")}
            headers["From"] = fields["from"][0]
            out.append(Rendered(address, to, apply(fields["subject"][0]),
                                apply(fields.get("text", [""])[0]),
                                apply(fields.get("html", [""])[0]), headers))
        return out


PROVIDERS = {p.name: p for p in (Postmark(), SendGrid(), Mailgun())}


class ApiServer:
    """One provider on 127.0.0.1:<free port>, in a thread; use as a context manager."""

    def __init__(self, provider: str, key: str, behaviour: Behaviour | None = None, *,
                 port: int = 0, keep_payloads: bool = True,
                 tls: ssl.SSLContext | None = None) -> None:
        self.provider = PROVIDERS[provider]
        self.key, self.behaviour = key, behaviour or Behaviour()
        self.keep_payloads = keep_payloads
        self.received: list[Received] = []
        self.lock = threading.Condition()  # notified at each request received
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._http.daemon_threads = True
        self._http.api = self  # type: ignore[attr-defined]
        self.port = self._http.server_address[1]
        self.tls = tls
        if tls is not None:
            self._http.socket = tls.wrap_socket(self._http.socket, server_side=True)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The transport URL for this server: plain http unless it was given a TLS context."""
        url = self.provider.url(self.port)
        return url if self.tls else url + ("&" if "?" in url else "?") + "tls=off"

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        """Return once `condition()` holds (checked at each request received)."""
        with self.lock:
            assert self.lock.wait_for(condition, timeout), "timed out waiting for the server"

    def accepted(self) -> list[str]:
        """Every recipient of every accepted request, as often as accepted."""
        with self.lock:
            return [r for entry in self.received for r in entry.accepted]

    def rendered(self) -> list[Rendered]:
        with self.lock:
            return [m for entry in self.received if 200 <= entry.status < 300
                    for m in self.provider.render(entry) if m.email in entry.accepted]

    def handle(self, path: str, headers: Message, body: bytes,
               respond: Callable[[int, dict[str, str], bytes], None]) -> None:
        parsed = self.provider.parse(self.key, path, headers, body)
        accepted: list[str] = []
        with self.lock:
            number = len(self.received)
            scripted = self.behaviour.answers.get(number)
            if not parsed.authorised:
                status, (extra, answer) = 401, self.provider.error(401, "")
            elif parsed.problems:
                status, (extra, answer) = 400, self.provider.error(400, "; ".join(
                    parsed.problems[:5]))
            elif scripted is not None:
                extra, answer = self.provider.error(scripted.status, scripted.message)
                status, extra = scripted.status, {**extra, **scripted.headers}
            else:
                status, extra, answer, accepted = self.provider.success(parsed, self.behaviour)
            self.received.append(Received(number, time.monotonic(), parsed.recipients,
                                          parsed.payload if self.keep_payloads else None,
                                          status, accepted, parsed.problems))
            self.lock.notify_all()
        delay = self.behaviour.delays.get(number, self.behaviour.delay)
        if delay:
            time.sleep(delay)
        respond(status, extra, answer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.api.handle(self.path, self.headers, body, self._respond)  # type: ignore[attr-defined]

    def _respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up waiting (a timeout, or it was killed)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve one mail-service API stand-in.")
    parser.add_argument("provider", choices=sorted(PROVIDERS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    server = ApiServer(args.provider, args.key, port=args.port, keep_payloads=False)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    server._http.serve_forever()


if __name__ == "__main__":
    main()
