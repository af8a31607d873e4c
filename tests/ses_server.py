"""A stand-in for Amazon SES's v2 API on 127.0.0.1, for the tests and the benchmark.

It speaks the documented shapes of SendEmail (`POST /v2/email/outbound-emails`, raw content)
and GetAccount (`GET /v2/email/account`), answers errors as SES does (rest-json: the type in
`x-amzn-ErrorType`, the text in `message`), and checks every request's AWS Signature
Version 4 by recomputing it with botocore's own signer from the credentials it was given:
a wrong signature gets SES's 403 InvalidSignatureException, an unknown key or token
UnrecognizedClientException, an expired session token ExpiredTokenException.

Its account has a SendQuota: past Max24HourSend a send gets 400 LimitExceededException
"Daily message quota exceeded."; messages whose sender (or, in the sandbox, recipient) is
not a verified identity get MessageRejected. Misbehaviour is scripted per SendEmail request
number (an error answer, a delay), and `expire_token_at` makes the session token expire from
that request on. Every request is logged at once, before any delay, with its recipient, the
raw message it carried and what the server answered.

Run as a program it serves until killed (tests/bench/bench_api.py does):

    python tests/ses_server.py --port 8025 --access-key AKID --secret-key SECRET
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "eu-west-1"
SEND_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"
MAX_MESSAGE = 40 * 1024 * 1024  # bytes of a raw message, SES v2's limit
MAX_RECIPIENTS = 50
SEND_FIELDS = {"FromEmailAddress", "FromEmailAddressIdentityArn", "Destination",
               "ReplyToAddresses", "FeedbackForwardingEmailAddress",
               "FeedbackForwardingEmailAddressIdentityArn", "Content", "EmailTags",
               "ConfigurationSetName", "EndpointId", "TenantName", "ListManagementOptions"}
AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/"
                           r"(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
                           r"SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                           r"Signature=(?P<signature>[0-9a-f]{64})")
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"


@dataclass
class Keys:
    """The credentials the stand-in accepts."""

    access_key: str
    secret_key: str
    token: str | None = None
    denied: set[str] = field(default_factory=set)  # IAM actions the user may not do


@dataclass
class Account:
    """GetAccount's answer, and what SendEmail counts against it."""

    max_send_rate: float = 1000.0
    max_24_hour_send: float = 50_000.0  # -1: no quota
    sent_last_24_hours: float = 0.0
    sending_enabled: bool = True
    production: bool = True  # False: the sandbox, only verified recipients
    verified: set[str] = field(default_factory=lambda: {"efus.eu"})  # addresses or domains
    configuration_sets: set[str] = field(default_factory=lambda: {"newsletter"})


@dataclass
class Answer:
    """A scripted error answer: status, SES's error type and message."""

    status: int
    kind: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Behaviour:
    answers: dict[int, Answer] = field(default_factory=dict)  # SendEmail number (from 0)
    delays: dict[int, float] = field(default_factory=dict)
    delay: float = 0.0
    expire_token_at: int | None = None  # from this SendEmail number on, the token expired


@dataclass
class Received:
    """One request as the server saw it, and what it answered."""

    number: int  # SendEmail requests only, from 0; -1 for GetAccount
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    recipients: list[str]
    raw: bytes | None  # the decoded Content.Raw.Data
    payload: object
    status: int
    kind: str  # the error type, "" when accepted
    problems: list[str]

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.path == SEND_PATH


class SesServer:
    """SES on 127.0.0.1:<free port>, in a thread; use as a context manager."""

    def __init__(self, keys: Keys, account: Account | None = None,
                 behaviour: Behaviour | None = None, *, port: int = 0,
                 keep_payloads: bool = True, tls: ssl.SSLContext | None = None) -> None:
        self.keys, self.account = keys, account or Account()
        self.behaviour = behaviour or Behaviour()
        self.keep_payloads = keep_payloads
        self.received: list[Received] = []
        self.sends = 0
        self.lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._http.daemon_threads = True
        self._http.ses = self  # type: ignore[attr-defined]
        self.port = self._http.server_address[1]
        self.tls = tls
        if tls is not None:
            self._http.socket = tls.wrap_socket(self._http.socket, server_side=True)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, **options: str) -> str:
        """The transport URL for this server (plain http unless it was given TLS)."""
        query = {"endpoint": f"127.0.0.1:{self.port}", **({} if self.tls else {"tls": "off"}),
                 **options}
        return f"ses://{REGION}?" + "&".join(f"{k}={v}" for k, v in query.items())

    def __enter__(self) -> SesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def accepted(self) -> list[str]:
        """Every recipient of every accepted SendEmail, as often as accepted."""
        with self.lock:
            return [r for entry in self.received if entry.accepted for r in entry.recipients]

    def handle(self, method: str, path: str, headers: Message, body: bytes,
               respond: Callable[[int, dict[str, str], bytes], None]) -> None:
        problems: list[str] = []
        recipients: list[str] = []
        raw: bytes | None = None
        payload: object = None
        with self.lock:
            number = self.sends if (method, path) == ("POST", SEND_PATH) else -1
            self.sends += number >= 0
            error = self._signature(method, path, headers, body, number)
            if error is None and (method, path) == ("GET", ACCOUNT_PATH):
                status, answer = 200, self._account()
            elif error is None and (method, path) == ("POST", SEND_PATH):
                payload, raw, recipients = _send_email(headers, body, problems)
                error = self._refusal(number, raw, recipients, problems, payload)
                if error is None:
                    self.account.sent_last_24_hours += len(recipients)
                    status, answer = 200, {"MessageId": f"0102{uuid.uuid4().hex}-000000"}
            elif error is None:
                error = Answer(404, "NotFoundException", f"no route {method} {path}")
            if error is not None:
                status, answer = error.status, {"message": error.message}
            self.received.append(Received(number, time.monotonic(), method, path, recipients,
                                          raw if self.keep_payloads else None,
                                          payload if self.keep_payloads else None, status,
                                          error.kind if error else "", problems))
        extra = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        if error is not None:
            extra["x-amzn-ErrorType"] = (f"{error.kind}:http://internal.amazon.com/coral/"
                                         "com.amazonaws.sesv2.v2/")
            extra.update(error.headers)
        delay = self.behaviour.delays.get(number, self.behaviour.delay) if number >= 0 else 0
        if delay:
            time.sleep(delay)
        respond(status, extra, json.dumps(answer).encode())

    def _account(self) -> dict[str, object]:
        a = self.account
        return {"DedicatedIpAutoWarmupEnabled": False, "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": a.production, "SendingEnabled": a.sending_enabled,
                "SendQuota": {"Max24HourSend": a.max_24_hour_send,
                              "MaxSendRate": a.max_send_rate,
                              "SentLast24Hours": a.sent_last_24_hours},
                "SuppressionAttributes": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}}

    def _refusal(self, number: int, raw: bytes | None, recipients: list[str],
                 problems: list[str], payload: object) -> Answer | None:
        """SES's verdict on a well-signed SendEmail: None accepts it."""
        a = self.account
        if problems:
            return Answer(400, "BadRequestException", "; ".join(problems[:5]))
        scripted = self.behaviour.answers.get(number)
        if scripted is not None:
            return scripted
        assert isinstance(payload, dict) and raw is not None
        configuration_set = payload.get("ConfigurationSetName")
        if configuration_set is not None and configuration_set not in a.configuration_sets:
            return Answer(404, "NotFoundException",
                          f"Configuration set <{configuration_set}> does not exist.")
        if not a.sending_enabled:
            return Answer(400, "SendingPausedException", "Sending is paused for this account.")
        if 0 <= a.max_24_hour_send <= a.sent_last_24_hours + len(recipients) - 1:
            return Answer(400, "LimitExceededException", "Daily message quota exceeded.")
        sender = parseaddr(BytesParser(policy=policy.compat32).parsebytes(
            raw, headersonly=True)["From"] or "")[1]
        unverified = [i for i in [sender] + ([] if a.production else recipients)
                      if i.lower() not in a.verified
                      and i.rpartition("@")[2].lower() not in a.verified]
        if unverified:
            return Answer(400, "MessageRejected", "Email address is not verified. The following "
                          f"identities failed the check in region {REGION.upper()}: "
                          + ", ".join(unverified))
        return None

    def _signature(self, method: str, path: str, headers: Message, body: bytes,
                   number: int) -> Answer | None:
        """SES's 403 for a request whose SigV4 signature or credentials do not hold."""
        auth = AUTHORIZATION.fullmatch(headers.get("Authorization") or "")
        if auth is None:
            return Answer(403, "MissingAuthenticationTokenException",
                          "Missing Authentication Token")
        keys = self.keys
        if auth["key"] != keys.access_key:
            return Answer(403, "UnrecognizedClientException", INVALID_TOKEN)
        token = headers.get("X-Amz-Security-Token")
        if token != keys.token:
            return Answer(403, "UnrecognizedClientException", INVALID_TOKEN)
        expire_at = self.behaviour.expire_token_at
        position = number if number >= 0 else self.sends  # a GetAccount: sends so far
        if keys.token and expire_at is not None and position >= expire_at:
            return Answer(403, "ExpiredTokenException", EXPIRED_TOKEN)
        if auth["service"] != "ses" or auth["region"] != REGION:
            return Answer(403, "InvalidSignatureException",
                          f"Credential should be scoped to a valid region and service 'ses' "
                          f"in {REGION}, not {auth['region']}/{auth['service']}.")
        stamp = headers.get("X-Amz-Date") or ""
        try:
            when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return Answer(400, "IncompleteSignatureException", "X-Amz-Date is missing or bad")
        if stamp[:8] != auth["date"] or abs(time.time() - when.timestamp()) > 300:
            return Answer(403, "InvalidSignatureException",
                          f"Signature expired: {stamp} is not within 5 minutes of now.")
        signed = auth["signed"].split(";")
        if not {"host", "x-amz-date"} <= set(signed) or (keys.token and
                                                        "x-amz-security-token" not in signed):
            return Answer(403, "InvalidSignatureException", MISMATCH)
        if headers.get("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest()) != \
                hashlib.sha256(body).hexdigest():
            return Answer(400, "InvalidSignatureException", "The provided "
                          "'x-amz-content-sha256' header does not match what was computed.")
        request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body,
                             headers={name: headers[name] or "" for name in signed})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(keys.access_key, keys.secret_key, keys.token), "ses",
                           REGION)
        expected = signer.signature(signer.string_to_sign(
            request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, auth["signature"]):
            return Answer(403, "InvalidSignatureException", MISMATCH)
        action = "ses:GetAccount" if method == "GET" else "ses:SendRawEmail"
        if action in keys.denied:
            return Answer(403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/"
                          f"newsletter is not authorized to perform: {action}")
        return None


def _send_email(headers: Message, body: bytes,
                problems: list[str]) -> tuple[object, bytes | None, list[str]]:
    """Check a SendEmail body against its documented shape: (payload, raw, recipients)."""
    if not (headers.get("Content-Type") or "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        problems.append(f"body is not JSON: {exc}")
        return None, None, []
    if not isinstance(payload, dict):
        problems.append("expected a JSON object")
        return payload, None, []
    if set(payload) - SEND_FIELDS:
        problems.append(f"unknown fields {sorted(set(payload) - SEND_FIELDS)}")
    content = payload.get("Content")
    if not isinstance(content, dict) or list(content) != ["Raw"] or \
            not isinstance(content["Raw"], dict) or set(content["Raw"]) != {"Data"}:
        problems.append("Content: expected {Raw: {Data}}")
        return payload, None, []
    try:
        raw = base64.b64decode(content["Raw"]["Data"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        problems.append("Content.Raw.Data is not base64")
        return payload, None, []
    if len(raw) > MAX_MESSAGE:
        problems.append("message over 40 MB")
    head, separator, _ = raw.partition(b"\r\n\r\n")
    if not separator or any(len(line) > 998 for line in raw.split(b"\r\n")):
        problems.append("raw message: a header and a body, CRLF lines of at most 1,000")
    message = BytesParser(policy=policy.compat32).parsebytes(head + b"\r\n\r\n")
    if not message["From"]:
        problems.append("raw message has no From header")
    destination = payload.get("Destination")
    if destination is None:
        recipients = [a for _, a in getaddresses(message.get_all("To", []) +
                                                 message.get_all("Cc", []))]
    elif not isinstance(destination, dict) or not all(
            isinstance(destination.get(k, []), list) for k in destination):
        problems.append("Destination: expected lists of addresses")
        recipients = []
    else:
        recipients = [a for k in ("ToAddresses", "CcAddresses", "BccAddresses")
                      for a in destination.get(k, [])]
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        problems.append(f"{len(recipients)} recipients; expected 1 to {MAX_RECIPIENTS}")
    if not all(isinstance(r, str) and r.isascii() and "@" in r for r in recipients):
        problems.append("recipients must be ASCII addresses (no SMTPUTF8; Punycode domains)")
    name = payload.get("ConfigurationSetName")
    if name is not None and not (isinstance(name, str) and name):
        problems.append("ConfigurationSetName: expected a name")
    return payload, raw, recipients


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SES
    disable_nagle_algorithm = True  # the body right after the headers, not 40 ms later

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.ses.handle(method, self.path, self.headers, body, self._respond)  # type: ignore[attr-defined]

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
    parser = argparse.ArgumentParser(description="Serve an Amazon SES v2 stand-in.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--max-send-rate", type=float, default=1000.0)
    args = parser.parse_args()
    account = Account(max_send_rate=args.max_send_rate, max_24_hour_send=-1)
    server = SesServer(Keys(args.access_key, args.secret_key), account, port=args.port,
                       keep_payloads=False)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    server._http.serve_forever()


if __name__ == "__main__":
    main()
