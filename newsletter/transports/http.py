"""What the mail-service APIs share: one HTTP session, timeouts, and what an answer means.

A provider module (postmark.py, sendgrid.py, mailgun.py) only builds the one request that
hands a batch over and reads the provider's verdicts from a 2xx answer. Everything else is
here, once, so that the providers cannot disagree about the ledger's guarantees:

    no connection, connect timeout, TLS failure    -> TransportUnavailable (nothing was sent)
    an untrusted certificate, 401, 403             -> TransportError, AuthenticationError:
                                                      the run stops before the key is sent
    429                                            -> TransportUnavailable(throttled, retry_after
                                                      from Retry-After or X-RateLimit-Reset)
    408, 5xx                                       -> TransportUnavailable: back off, retry
    any other 4xx                                  -> TransportError with the provider's own
                                                      message: the run stops
    read timeout, connection lost after the
    request went out                               -> OutcomeUnknown (never silently re-sent)

URLs: `SCHEME://default` is the provider's public endpoint; any other host[:port] replaces
it (an EU region, a local test server). `tls=off` speaks plain http, to this machine only;
`ca_file=PATH` (or `ca_file` in newsletter.toml) trusts a private CA. The API key comes from
NEWSLETTER_API_KEY only (Amazon SES signs with AWS credentials instead: ses.py), and is
removed from every message this module produces.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, urlsplit

import requests
import urllib3

from ..config import Settings
from ..envelope import Personalised
from ..errors import (
    AuthenticationError,
    ConfigError,
    OutcomeUnknown,
    TransportError,
    TransportUnavailable,
)
from ..grammar import PLACEHOLDER
from .base import Result, Transport, is_loopback

log = logging.getLogger(__name__)
DEBUG_BODY_CHARS = 400  # how much of each request and answer `-v` shows

API_KEY_VARIABLE = "NEWSLETTER_API_KEY"
CONNECT_TIMEOUT = 10.0  # seconds to connect; the answer may take settings.timeout
MAX_WAIT = 3600.0  # a longer Retry-After is taken as this
EXCERPT = 300  # characters of a provider's reply kept in messages and the ledger
_SPACES = re.compile(r"\s+")
_OBJECT = re.compile(r"^(<[^>]*>|\w+\([^)]*\)): ")  # urllib3's connection or pool, in messages


@dataclass(frozen=True)
class Endpoint:
    """Where a provider's API is and how to reach it, from the transport URL."""

    base_url: str  # scheme://host[:port]
    api_key: str = field(repr=False)
    timeout: tuple[float, float]  # (connect, read), as requests takes them
    verify: bool | str  # True, or the path of a CA bundle
    options: Mapping[str, str]  # the provider's own URL options


@dataclass(frozen=True)
class ApiRequest:
    """The one POST that hands a batch over (or a GET that reads the account)."""

    path: str
    body: bytes
    content_type: str
    method: str = "POST"


def url_options(url: SplitResult, allowed: Sequence[str]) -> dict[str, str]:
    """The `?name=value` options of a transport URL; unknown names are an error."""
    query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    known = (*allowed, "tls", "ca_file")
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise ConfigError(f"transport {url.scheme}://{url.hostname or ''}: unknown option(s) "
                          f"{', '.join(unknown)}; expected {', '.join(known)}")
    return query


def url_host(url: SplitResult, default: str) -> str:
    """The API host[:port] of `SCHEME://default` or `SCHEME://host[:port]`."""
    if not url.hostname:
        raise ConfigError(f"transport {url.scheme}://: expected a host, as in "
                          f"{url.scheme}://default")
    return default if url.hostname == "default" else url.netloc.rpartition("@")[2]


def api_endpoint(url: SplitResult, settings: Settings, *, host: str,
                 options: Mapping[str, str], key: str | None = None) -> Endpoint:
    """Check what every API transport URL needs and read the key from the environment
    (unless the provider found its own credentials: `key` is then the secret to redact)."""
    shown = f"{url.scheme}://{url.hostname or ''}"
    if url.username is not None or url.password is not None:
        raise ConfigError(f"transport {shown}: do not put the API key in the URL; set "
                          f"{API_KEY_VARIABLE} in the environment instead")
    key = settings.env.get(API_KEY_VARIABLE, "").strip() if key is None else key
    if not key:
        raise ConfigError(f"transport {shown}: set {API_KEY_VARIABLE} in the environment to "
                          "the provider's API key")
    tls = options.get("tls", "on")
    if tls not in ("on", "off"):
        raise ConfigError(f"transport {shown}: tls={tls!r}; expected on or off")
    if tls == "off" and not is_loopback(urlsplit(f"//{host}").hostname or ""):
        raise ConfigError(f"transport {shown}: refusing to send the API key without TLS to "
                          f"{host}, which is not this machine")
    verify: bool | str = True
    ca_file = options.get("ca_file") or settings.ca_file
    if ca_file:
        path = settings.path(ca_file)
        if not path.is_file():
            raise ConfigError(f"transport {shown}: ca_file {path}: no such file")
        verify = str(path)
    return Endpoint(f"{'http' if tls == 'off' else 'https'}://{host}", key,
                    (min(CONNECT_TIMEOUT, settings.timeout), settings.timeout), verify,
                    dict(options))


class Template:
    """A body split at its `%%placeholders%%`: literal, name, literal, ..., literal. A
    provider fills it per recipient, or rewrites it into its own substitution syntax so
    that one copy serves a whole batch."""

    def __init__(self, text: str) -> None:
        pieces = PLACEHOLDER.split(text)
        self.literals, self.names = pieces[0::2], pieces[1::2]

    def rewrite(self, tag: Callable[[str], str]) -> str:
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(tag(name))
            out.append(literal)
        return "".join(out)


def display_address(name: str, address: str) -> str:
    """`Name <address>` as the APIs take it: UTF-8 kept, the name quoted if it has specials
    (a comma would otherwise split it into two recipients)."""
    if not name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def unfolded(value: str) -> str:
    """A header value as one line: the APIs fold long headers themselves."""
    return value.replace("\r\n ", " ").replace("\r\n\t", " ")


class HttpTransport(Transport):
    """One provider's API over one `requests.Session`: build, post, check, parse."""

    provider = "the mail service"
    key_help = "API key"  # what NEWSLETTER_API_KEY must hold, for error messages

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._session: requests.Session | None = None

    @property
    def description(self) -> str:
        return f"{self.provider} API {self.endpoint.base_url}"

    @abstractmethod
    def authenticate(self, session: requests.Session) -> None:
        """Put the API key where the provider expects it."""

    @abstractmethod
    def build_request(self, batch: Sequence[Personalised]) -> ApiRequest:
        """The one request that hands `batch` over (a batch shares one MessageFactory)."""

    @abstractmethod
    def parse_response(self, response: requests.Response,
                       batch: Sequence[Personalised]) -> list[Result]:
        """One Result per message of `batch`, from a 2xx answer."""

    def error_text(self, response: requests.Response, batch: Sequence[Personalised]) -> str:
        """The provider's own explanation in an error answer."""
        return response.text

    def hint(self, status: int) -> str:
        """What the user can do about a refusal with this status."""
        if status == 413:
            return "; lower batch_size in the [send] section of newsletter.toml"
        return ""

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        if not batch:
            return []
        request = self.build_request(batch)
        response = self._post(request)
        self._check(response, batch)
        return self.parse_response(response, batch)

    def _session_for_sending(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            # No .netrc (it would replace the API key) and no per-request proxy lookup
            # (slow); proxies from the environment are read once, here.
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.endpoint.base_url))
            session.verify = self.endpoint.verify
            session.headers.update({"User-Agent": "newsletter", "Accept": "application/json"})
            self.authenticate(session)
            self._session = session
        return self._session

    def _post(self, request: ApiRequest) -> requests.Response:
        where = f"{self.provider} {self.endpoint.base_url}"
        url = self.endpoint.base_url + request.path
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s %s (%s, %d bytes): %s", self.provider, request.method, url,
                      request.content_type.split(";")[0], len(request.body),
                      self.redact(request.body[:DEBUG_BODY_CHARS].decode("utf-8", "replace")))
        try:
            response = self._session_for_sending().request(
                request.method, url, data=request.body or None,
                headers={"Content-Type": request.content_type} if request.body else None,
                timeout=self.endpoint.timeout)
            log.debug("%s: answered %d: %s", self.provider, response.status_code,
                      self.redact(response.text[:DEBUG_BODY_CHARS]))
            return response
        except requests.exceptions.ConnectTimeout:
            raise TransportUnavailable(f"{where}: no connection within "
                                       f"{self.endpoint.timeout[0]:g} s; nothing was sent",
                                       provider=self.provider) from None
        except requests.exceptions.ReadTimeout:
            raise OutcomeUnknown(f"{where}: no answer within {self.endpoint.timeout[1]:g} s "
                                 "after the request was sent", provider=self.provider) from None
        except requests.exceptions.SSLError as exc:
            text = self.redact(_describe(exc))
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise TransportError(f"{where}: TLS certificate not trusted ({text}); nothing "
                                     "was sent. For a private endpoint, set ca_file",
                                     provider=self.provider) from None
            raise TransportUnavailable(f"{where}: TLS failed ({text}); nothing was sent",
                                       provider=self.provider) from None
        except requests.exceptions.ConnectionError as exc:
            text = self.redact(_describe(exc))
            if _before_request(exc):
                raise TransportUnavailable(f"{where}: cannot connect ({text}); nothing was "
                                           "sent", provider=self.provider) from None
            raise OutcomeUnknown(f"{where}: connection lost after the request was sent "
                                 f"({text})", provider=self.provider) from None
        except requests.exceptions.RequestException as exc:  # e.g. a broken answer
            text = self.redact(_describe(exc))
            raise OutcomeUnknown(f"{where}: no answer after the request was sent ({text})",
                                 provider=self.provider) from None

    def _check(self, response: requests.Response, batch: Sequence[Personalised]) -> None:
        """Raise what a non-2xx answer means for the whole batch."""
        status = response.status_code
        if 200 <= status < 300:
            return
        reply = self.reply(response, self.error_text(response, batch))
        if status in (401, 403):
            raise AuthenticationError(f"{self.provider} refused the API key ({reply}); check "
                                      f"{API_KEY_VARIABLE}: it must hold {self.key_help}",
                                      reply, provider=self.provider, status=status)
        if status == 429:
            raise TransportUnavailable(f"{self.provider} asks to slow down ({reply})", reply,
                                       retry_after=retry_after(response), throttled=True,
                                       provider=self.provider, status=status)
        if status == 408 or status >= 500:
            raise TransportUnavailable(f"{self.provider} failed to take the batch ({reply}); "
                                       "it will be retried", reply,
                                       retry_after=retry_after(response),
                                       provider=self.provider, status=status)
        raise TransportError(f"{self.provider} refused the request ({reply}){self.hint(status)}",
                             reply, provider=self.provider, status=status)

    def reply(self, response: requests.Response, text: str) -> str:
        """`status reason: text`, one line, short, without the key: for the ledger."""
        text = _SPACES.sub(" ", text).strip()
        head = f"{response.status_code} {response.reason or ''}".strip()
        return self.redact(f"{head}: {text[:EXCERPT]}" if text else head)

    def redact(self, text: str) -> str:
        return text.replace(self.endpoint.api_key, "***")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def retry_after(response: requests.Response) -> float | None:
    """Seconds the provider asked us to wait: Retry-After, else X-RateLimit-Reset."""
    seconds: float | None = None
    value = response.headers.get("Retry-After", "").strip()
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    try:
        if value:
            seconds = float(value)
        elif reset:
            moment = float(reset)
            moment = moment / 1000 if moment > 1e12 else moment  # some give milliseconds
            seconds = moment - time.time() if moment > 1e9 else moment
    except ValueError:
        try:  # Retry-After may be an HTTP date
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = None
    return None if seconds is None else min(max(seconds, 0.0), MAX_WAIT)


def _before_request(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before any of the request could leave."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError
                      | urllib3.exceptions.ConnectTimeoutError
                      | urllib3.exceptions.ProxyError)


def _describe(exc: BaseException) -> str:
    """The useful end of a requests error, without urllib3's object reprs."""
    reason: object = exc.args[0] if exc.args else exc
    if isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = _OBJECT.sub("", str(reason)).strip("()'\" ")
    return text[:EXCERPT] or type(exc).__name__
