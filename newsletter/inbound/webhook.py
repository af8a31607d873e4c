"""The contract of a mail service's webhook: verify the request, then read its events.

A provider module (postmark.py, sendgrid.py, mailgun.py, ses.py) does two things: `verify`
proves the request comes from the provider (basic auth, a signature, a replay window) and
raises Refused otherwise; `parse` turns the body into Findings with classify.kind_of(), the
same table as for mailed reports. Matching, storage and what happens to the subscriber are
intake.py's, for every provider alike.
"""

from __future__ import annotations

import datetime as dt
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ..config import Settings
from ..states import EventSource
from .report import Parsed

# A replay check: True the first time (provider, nonce) is seen within the window.
FirstTime = Callable[[str, str], bool]


@dataclass(frozen=True)
class WebhookRequest:
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    now: float


class Refused(Exception):  # noqa: N818 - a refusal, answered with its status
    """The request is not the provider's, or not readable: answered `status`, nothing
    changed."""

    def __init__(self, status: int, reason: str,
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.status, self.reason = status, reason
        self.headers = headers or []
        super().__init__(reason)


@dataclass
class Webhook(ABC):
    settings: Settings
    secret: str = field(repr=False)  # the key or password that authenticates the provider
    source: ClassVar[EventSource]
    secret_variable: ClassVar[str]  # the environment variable it comes from

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhook | None:
        """None when the provider's secret is not configured: its endpoint answers 404."""
        secret = settings.env.get(cls.secret_variable, "").strip()
        return cls(settings, secret) if secret else None

    @abstractmethod
    def verify(self, request: WebhookRequest, first_time: FirstTime) -> None:
        """Raise Refused unless the request provably comes from the provider, now."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> Parsed:
        """The request's events; Refused(400) if the body is not what the provider sends."""


def json_body(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON ({str(exc)[:80]})") from None


def within(request: WebhookRequest, timestamp: object, max_age: float) -> float:
    """The request's signed timestamp, if it is recent; else Refused(403)."""
    try:
        stamp = float(str(timestamp))
    except ValueError:
        raise Refused(403, "the signature's timestamp is not a number") from None
    if abs(request.now - stamp) > max_age:
        raise Refused(403, f"the signature is {abs(request.now - stamp):.0f} s old, outside "
                           f"the {max_age:.0f} s window: a replay, or a clock far off")
    return stamp


def iso_time(value: object) -> float | None:
    """Seconds from an ISO 8601 time (Postmark's have 7 decimals and a Z)."""
    text = str(value or "").strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def text_of(value: object, limit: int = 500) -> str:
    return " ".join(str(value if value is not None else "").split())[:limit]
