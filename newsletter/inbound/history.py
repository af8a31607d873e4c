"""The events recorded about one subscriber, newest first, for `subscribers show`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    recorded_at: float
    occurred_at: float | None
    issue: str
    kind: str
    source: str
    status: str
    diagnostic: str


def subscriber_events(connection: sqlite3.Connection, subscriber_id: int,
                      limit: int = 20) -> list[Event]:
    """The last `limit` bounces, blocks and complaints about this subscriber's deliveries."""
    rows = connection.execute(
        "SELECT e.recorded_at, e.occurred_at, s.issue, e.kind, e.source, e.status, "
        "e.diagnostic FROM delivery_events e JOIN sends s ON s.id = e.send_id "
        "WHERE e.subscriber_id = ? ORDER BY e.id DESC LIMIT ?", (subscriber_id, limit))
    return [Event(*row) for row in rows]
