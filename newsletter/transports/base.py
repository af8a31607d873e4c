"""The transport contract: hand over a batch of messages, get one Result per message.

A transport only speaks its wire protocol. The ledger, retries and rate limits live in the
dispatcher, once. Batch-level failures are exceptions (see errors.py):

- TransportUnavailable: nothing in the batch was handed over; it can be retried as is.
- AuthenticationError / ConfigError: retrying cannot help; the run stops.
- OutcomeUnknown: the batch left this machine but no verdict came back.
- QuotaExhausted: the service takes nothing more for now (its daily quota): the run pauses.

A service with published quotas reports them through `limits()`, which the campaign reads
once before a bulk send (for its rate and its plan).
"""

from __future__ import annotations

import enum
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar
from urllib.parse import SplitResult

from ..config import Settings
from ..envelope import Personalised


class Status(enum.StrEnum):
    SENT = "sent"  # the server accepted the message
    DEFERRED = "deferred"  # temporary refusal: try again later
    FAILED = "failed"  # permanent refusal for this recipient
    UNKNOWN = "unknown"  # the data left; no verdict (re-send only on request)


@dataclass(frozen=True)
class Result:
    status: Status
    reply: str = ""  # the server's answer, e.g. "550 5.1.1 No such user"
    suppress: bool = False  # the address is dead: never mail it again (hard bounce)
    throttled: bool = False  # the server asked us to slow down
    retry_after: float | None = None  # seconds the server asked us to wait (HTTP 429)


@dataclass(frozen=True)
class Limits:
    """What a service allows this account right now, read before a bulk send."""

    per_second: float | None = None  # messages a second at most (the run goes no faster)
    remaining: int | None = None  # messages left in its rolling 24-hour quota (None: no quota)
    note: str = ""  # anything else to know before sending (e.g. a sandboxed account)


class Transport(ABC):
    """One connection (or HTTP session) to a mail server or service."""

    schemes: ClassVar[tuple[str, ...]]
    max_batch: ClassVar[int] = 1  # messages per send() call at most
    default_batch: ClassVar[int] = 1
    # Headers the service replaces in transit, which a DKIM signature must therefore not cover.
    rewritten_headers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> Transport:
        """Build from `scheme://...` in newsletter.toml, --transport or NEWSLETTER_TRANSPORT."""

    @property
    def description(self) -> str:
        """Where messages go, for logs: never includes a secret."""
        return type(self).__name__

    @abstractmethod
    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        """Hand over `batch`; return one Result per message, in order."""

    def limits(self) -> Limits | None:
        """The service's own sending limits for this account, if it publishes them."""
        return None

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release the connection; sending again reopens it."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def is_loopback(host: str) -> bool:
    """True for this machine: the only place plaintext (`tls=off`) may carry secrets to."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
