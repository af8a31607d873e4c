"""What the database says of each send: its record and the versions it went out with.

Read by `status`, the schedule, the readiness checks and the archive, none of which needs
the ledger that a running send holds.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from ..states import SendState


@dataclass(frozen=True)
class SendRecord:
    id: int
    issue: str
    lists: tuple[str, ...]
    content_hash: str
    state: SendState
    created_at: float
    started_at: float | None
    finished_at: float | None
    transport: str | None  # the URL the last run went through, without secrets


@dataclass(frozen=True)
class SendVersion:
    """One version of the composed issue that a send has gone out with."""

    content_hash: str
    issue_date: str | None  # the issue's date, YYYY-MM-DD (None for sends before v7)
    source: str | None  # the issue file's name
    since: float  # the first run with this version


def find_send(connection: sqlite3.Connection, issue: str) -> SendRecord | None:
    """The send of `issue`, or None if it was never sent to a list."""
    row = connection.execute("SELECT id, issue, lists, content_hash, state, created_at, "
                             "started_at, finished_at, transport FROM sends WHERE issue = ?",
                             (issue,)).fetchone()
    if row is None:
        return None
    return SendRecord(row[0], row[1], tuple(json.loads(row[2])), row[3], SendState(row[4]),
                      *row[5:])


def find_versions(connection: sqlite3.Connection, send_id: int) -> list[SendVersion]:
    """The versions a send has gone out with, oldest first."""
    rows = connection.execute("SELECT content_hash, issue_date, source, since FROM "
                              "send_versions WHERE send_id = ? ORDER BY id", (send_id,))
    return [SendVersion(*row) for row in rows]
