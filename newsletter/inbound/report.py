"""What every intake makes of what it received, before anything is matched or stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..states import Disposition, EventKind, EventSource


@dataclass(frozen=True)
class Finding:
    """One recipient's fate as a report tells it.

    `tokens` and `message_ids` are what the report carries that may name our delivery:
    candidates only, until intake.py checks the token's signature or finds the Message-ID
    in the ledger. `key` is the same for the same report about the same recipient, so
    that a report received twice is counted once.
    """

    kind: EventKind
    source: EventSource
    key: str
    recipient: str = ""
    status: str = ""  # enhanced status code, e.g. 5.1.1
    diagnostic: str = ""
    tokens: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()
    occurred_at: float | None = None


@dataclass
class Parsed:
    """What one message or webhook request says: findings, or why there are none."""

    findings: list[Finding] = field(default_factory=list)
    disposition: Disposition | None = None  # when there are no findings: why not
    ignored: int = 0  # events that change nothing (delayed, delivered, opened...)
    summary: str = ""  # one line for the log: what kind of report it was
    unsubscribe: str = ""  # the token of a List-Unsubscribe request by mail (RFC 2369)


def event_key(*parts: object) -> str:
    """A short stable digest of what identifies one event."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]
