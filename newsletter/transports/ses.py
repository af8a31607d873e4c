"""`ses://REGION`: Amazon SES's v2 API, each message handed over as its exact bytes.

    ses://eu-west-1                                  https://email.eu-west-1.amazonaws.com
    ses://eu-west-1?configuration_set=newsletter     with a configuration set (event publishing)
    ses://eu-west-1?endpoint=vpce-0a1b.email.eu-west-1.vpce.amazonaws.com    a VPC endpoint
    ses://eu-west-1?endpoint=127.0.0.1:8025&tls=off  a local test server

SendEmail, `POST /v2/email/outbound-emails`, one request per recipient: `Content.Raw.Data`
is the message as SMTP would carry it (base64 in the JSON), `Destination.ToAddresses` its
one recipient. Requests carry an AWS Signature Version 4 (requests-aws4auth, service `ses`)
made with the credentials aws.py finds; the answer 200 `{"MessageId": ...}` is `sent`, SES's
id going into the ledger's reply. SES replaces the Message-ID and Date headers with its own
("Amazon SES header fields"), so a DKIM signature of ours must leave them out, as SES's
manual-DKIM guide says: `rewritten_headers`. SES, not our return path, receives the
bounces, and its notifications give back the headers we handed over: a delivery's token
goes in an X-Newsletter-Delivery header above the message, for the SES webhook (outside
our DKIM signature, which a header added on top does not break; the token is signed with
the newsletter's secret, as in a return path, so nobody can make one for another).

`limits()` reads GetAccount, `GET /v2/email/account`: SendQuota.MaxSendRate caps the run's
rate, Max24HourSend (-1: no quota) minus SentLast24Hours is what is left today.

Errors come as rest-json: the type in `x-amzn-ErrorType` (else `code` or `__type` in the
body), the text in `message`:

    MessageRejected                         that recipient fails with SES's reason; but when
                                            the identity it names unverified is the sender,
                                            the run stops (every message would fail alike)
    TooManyRequestsException (429),
    "Maximum sending rate exceeded"         throttled: the run slows down; retried in 1 s
    "Daily message quota exceeded"          QuotaExhausted: the run pauses, a later one resumes
    AccountSuspendedException, SendingPausedException, MailFromDomainNotVerifiedException,
    NotFoundException                       the run stops, with what to do
    401, 403 (a bad signature, an expired
    token, an unknown key, access denied)   AuthenticationError: the run stops
    5xx, 408, other 4xx, no connection,
    no answer after the request left        as for every mail-service API (http.py)
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Sequence
from email.utils import parseaddr
from urllib.parse import SplitResult

import requests
from requests_aws4auth import AWS4Auth

from ..config import Settings
from ..envelope import TOKEN_HEADER, Personalised
from ..errors import (
    AuthenticationError,
    ConfigError,
    OutcomeUnknown,
    QuotaExhausted,
    TransportError,
    TransportUnavailable,
)
from .aws import KEY_VARIABLES, TOKEN_VARIABLE, Credentials, find_credentials
from .base import Limits, Result, Status
from .http import ApiRequest, Endpoint, HttpTransport, api_endpoint, retry_after, url_options

log = logging.getLogger(__name__)

SEND_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HOST = re.compile(r"^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$")
THROTTLED = ("TooManyRequestsException", "ThrottlingException", "Throttling")
RATE_EXCEEDED = "maximum sending rate exceeded"
QUOTA_EXCEEDED = ("daily message quota exceeded", "daily sending quota exceeded")
_UNVERIFIED = re.compile(r"failed the check in region [\w-]+:\s*(.+)$", re.IGNORECASE)
STOPS = {
    "AccountSuspendedException": "Amazon SES has permanently restricted sending from this "
                                 "account; nothing more can be sent through it",
    "SendingPausedException": "sending is paused for this account or its configuration set; "
                              "resume it in the SES console (Account dashboard, or the "
                              "configuration set) and run the same command again",
    "MailFromDomainNotVerifiedException": "the custom MAIL FROM domain of the sender is not "
                                          "verified (SES cannot read its MX record); fix it in "
                                          "the SES console and run the same command again",
    "NotFoundException": "check configuration_set= in the transport URL: SES knows no such "
                         "configuration set in this region",
}
ADVICE = {
    "ExpiredTokenException": "the session token has expired: get fresh temporary "
                             f"credentials (a new {TOKEN_VARIABLE}, or `aws sso login`)",
    "InvalidSignatureException": "the secret access key does not belong to the access key, or "
                                 "this machine's clock is wrong",
    "UnrecognizedClientException": "AWS does not know this access key or session token",
    "AccessDeniedException": "the IAM user or role may not do this: allow it ses:SendEmail, "
                             "ses:SendRawEmail and ses:GetAccount",
}
ADVICE["SignatureDoesNotMatch"] = ADVICE["InvalidSignatureException"]
ADVICE["InvalidClientTokenId"] = ADVICE["UnrecognizedClientException"]


class SesTransport(HttpTransport):
    schemes = ("ses",)
    max_batch = 1  # SendEmail takes one raw message
    default_batch = 1
    rewritten_headers = ("Message-ID", "Date")
    provider = "Amazon SES"

    def __init__(self, endpoint: Endpoint, region: str, credentials: Credentials,
                 configuration_set: str | None = None) -> None:
        super().__init__(endpoint)
        self.region, self.credentials = region, credentials
        self.configuration_set = configuration_set

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> SesTransport:
        region = (url.hostname or "").lower()
        shown = f"ses://{region}"
        if url.username is not None or url.password is not None:
            raise ConfigError(f"transport {shown}: do not put AWS credentials in the URL; set "
                              f"{' and '.join(KEY_VARIABLES)} in the environment, or use the "
                              "shared credentials file")
        try:
            port = url.port
        except ValueError:  # never echo the rest of the netloc: it may hold a secret
            port = -1
        if not REGION.match(region) or port is not None:
            raise ConfigError(f"transport {shown}: expected the AWS region of your SES "
                              "account, as in ses://eu-west-1")
        options = url_options(url, ("configuration_set", "endpoint"))
        configuration_set = options.get("configuration_set") or None
        if configuration_set and not CONFIGURATION_SET.match(configuration_set):
            raise ConfigError(f"transport {shown}: configuration_set={configuration_set!r}; "
                              "expected the name of an SES configuration set (letters, digits, "
                              "- and _)")
        host = options.get("endpoint", "").removeprefix("https://").rstrip("/")
        if host and not HOST.match(host):
            raise ConfigError(f"transport {shown}: endpoint={options['endpoint']!r}; expected "
                              "HOST or HOST:PORT (plain http: add tls=off, to this machine only)")
        default = f"email.{region}.amazonaws.com" + (".cn" if region.startswith("cn-") else "")
        credentials = find_credentials(settings.env, shown)
        endpoint = api_endpoint(url, settings, host=host or default, options=options,
                                key=credentials.secret_key)
        return cls(endpoint, region, credentials, configuration_set)

    @property
    def description(self) -> str:
        extra = f", configuration set {self.configuration_set}" if self.configuration_set else ""
        return f"{super().description} (region {self.region}{extra})"

    def authenticate(self, session: requests.Session) -> None:
        c = self.credentials
        session.auth = AWS4Auth(c.access_key, c.secret_key, self.region, "ses",
                                session_token=c.token)

    def build_request(self, batch: Sequence[Personalised]) -> ApiRequest:
        [message] = batch
        data = message.data
        if message.token:  # comes back in mail.headers of SES's bounce and complaint events
            data = f"{TOKEN_HEADER}: {message.token}\r\n".encode("ascii") + data
        body: dict[str, object] = {
            "Content": {"Raw": {"Data": base64.b64encode(data).decode("ascii")}},
            "Destination": {"ToAddresses": [message.recipient.email]}}
        if self.configuration_set:
            body["ConfigurationSetName"] = self.configuration_set
        return ApiRequest(SEND_PATH, json.dumps(body).encode(), "application/json")

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        if len(batch) != 1:
            raise ValueError("Amazon SES takes one message a request")
        response = self._post(self.build_request(batch))
        if not 200 <= response.status_code < 300:
            verdict = self._refused(response, batch[0])
            if verdict is not None:
                return [verdict]
            self._check(response, batch)  # what every API's answer means alike: 429, 5xx...
        return self.parse_response(response, batch)

    def parse_response(self, response: requests.Response,
                       batch: Sequence[Personalised]) -> list[Result]:
        try:
            message_id = response.json()["MessageId"]
        except (ValueError, KeyError, TypeError):
            raise OutcomeUnknown(f"Amazon SES answered {self.reply(response, response.text)} "
                                 "without a MessageId: cannot tell whether it took the message",
                                 provider=self.provider) from None
        return [Result(Status.SENT, f"{response.status_code} Amazon SES MessageId {message_id}")]

    def limits(self) -> Limits:
        """SendQuota from GetAccount; a missing ses:GetAccount permission only warns."""
        try:
            response = self._post(ApiRequest(ACCOUNT_PATH, b"", "", method="GET"))
        except OutcomeUnknown as exc:  # a GET hands nothing over: no answer means unavailable
            raise TransportUnavailable(f"{exc}; nothing was sent", provider=self.provider) \
                from None
        if not 200 <= response.status_code < 300:
            kind, text = _error(response)
            if kind == "AccessDeniedException":
                log.warning("%s: cannot read the account's sending quota (%s); sending without "
                            "it. Allow the IAM user ses:GetAccount, or set rate_per_second",
                            self.provider, self.reply(response, f"{kind}: {text}"))
                return Limits()
            self._stop_on_credentials(response)
            self._check(response, [])
        try:
            account = response.json()
            quota = account["SendQuota"]
            per_second, per_day = float(quota["MaxSendRate"]), float(quota["Max24HourSend"])
            sent = float(quota.get("SentLast24Hours") or 0)
        except (ValueError, KeyError, TypeError):
            raise TransportError(f"Amazon SES answered GetAccount without a SendQuota "
                                 f"({self.reply(response, response.text)}); check endpoint=",
                                 provider=self.provider) from None
        if account.get("SendingEnabled") is False:
            raise TransportError(f"Amazon SES: sending is disabled for this account in "
                                 f"{self.region} (GetAccount says SendingEnabled: false); nothing "
                                 "was sent. Enable it in the SES console and run the same "
                                 "command again", provider=self.provider)
        note = "" if account.get("ProductionAccessEnabled", True) else (
            f"the account is in the SES sandbox of {self.region}: only verified addresses "
            "receive mail; request production access in the SES console")
        return Limits(per_second if per_second > 0 else None,
                      None if per_day < 0 else max(0, int(per_day - sent)), note)

    def _refused(self, response: requests.Response, message: Personalised) -> Result | None:
        """What an error answer of SES's own means: a failed recipient, or raise for the
        run; None leaves it to the meaning every API shares."""
        kind, text = _error(response)
        reply = self.reply(response, f"{kind}: {text}" if kind else response.text)
        lowered = text.lower()
        if any(phrase in lowered for phrase in QUOTA_EXCEEDED):
            raise QuotaExhausted(f"Amazon SES's 24-hour sending quota is used up ({reply}); "
                                 "the rest goes when it frees up, by the same command or cron",
                                 reply, provider=self.provider, status=response.status_code)
        if kind in THROTTLED or RATE_EXCEEDED in lowered:
            raise TransportUnavailable(f"Amazon SES asks to slow down ({reply})", reply,
                                       retry_after=retry_after(response) or 1.0,
                                       throttled=True, provider=self.provider,
                                       status=response.status_code)
        self._stop_on_credentials(response)
        if kind in STOPS:
            raise TransportError(f"Amazon SES refused the message ({reply}): {STOPS[kind]}",
                                 reply, provider=self.provider, status=response.status_code)
        if kind == "MessageRejected":
            sender = parseaddr(message.source.sender)[1].lower()
            named = _UNVERIFIED.search(text)
            identities = {i.strip().lower() for i in named[1].split(",")} if named else set()
            if identities & {sender, sender.rpartition("@")[2]}:
                raise TransportError(f"Amazon SES has not verified the sender {sender} "
                                     f"({reply}); verify it (or its domain) in the SES console "
                                     f"of {self.region} and run the same command again",
                                     reply, provider=self.provider, status=response.status_code)
            return Result(Status.FAILED, reply)
        return None

    def _stop_on_credentials(self, response: requests.Response) -> None:
        if response.status_code not in (401, 403):
            return
        kind, text = _error(response)
        reply = self.reply(response, f"{kind}: {text}" if kind else response.text)
        advice = ADVICE.get(kind) or ADVICE["ExpiredTokenException" if "expired" in text.lower()
                                            else "UnrecognizedClientException"]
        raise AuthenticationError(f"Amazon SES refused the credentials from "
                                  f"{self.credentials.source} ({reply}): {advice}", reply,
                                  provider=self.provider, status=response.status_code)

    def error_text(self, response: requests.Response, batch: Sequence[Personalised]) -> str:
        kind, text = _error(response)
        return f"{kind}: {text}" if kind else response.text

    def redact(self, text: str) -> str:
        for secret in self.credentials.secrets:
            text = text.replace(secret, "***")
        return text


def _error(response: requests.Response) -> tuple[str, str]:
    """(type, message) of an AWS rest-json error answer, as botocore reads them."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    kind = response.headers.get("x-amzn-ErrorType") or str(
        body.get("code") or body.get("Code") or body.get("__type") or "")
    return kind.split(":", 1)[0].rsplit("#", 1)[-1], str(body.get("message")
                                                        or body.get("Message") or "")

