"""Consent records: how, when and to what wording each person agreed to be mailed.

Every way onto a list leaves one (the sign-up form, an import, the command line). The
wording is stored once per version in `consent_texts` and referenced by its SHA-256, so a
million sign-ups under the same sentence keep one copy of it, and a changed sentence is a
new version that older records do not follow.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

from ..database import utc_now


@dataclass(frozen=True)
class Consent:
    id: int
    lists: list[str]
    source: str  # the form's URL, "imported from members.csv", "added by hand"...
    text: str | None  # the wording agreed to; None when not known (an import)
    text_hash: str | None
    given_at: str  # ISO 8601 UTC
    confirmed_at: str | None  # double opt-in: when the confirmation button was pressed
    client_ip: str | None  # only with [signup] record_client_ip

    def as_json(self) -> dict[str, object]:
        return {"lists": self.lists, "source": self.source, "wording": self.text,
                "wording_sha256": self.text_hash, "given_at": self.given_at,
                "confirmed_at": self.confirmed_at, "client_ip": self.client_ip}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record(conn: sqlite3.Connection, subscriber_id: int, lists: list[str], source: str, *,
           text: str | None = None, client_ip: str | None = None,
           given_at: str | None = None) -> int:
    """Record a consent (in the caller's transaction); its id."""
    digest = None
    now = utc_now()
    if text is not None:
        digest = text_hash(text)
        conn.execute("INSERT OR IGNORE INTO consent_texts (hash, text, first_used_at) "
                     "VALUES (?, ?, ?)", (digest, text, now))
    return conn.execute(
        "INSERT INTO consents (subscriber_id, lists, source, text_hash, given_at, client_ip) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (subscriber_id, json.dumps(lists), source, digest, given_at or now, client_ip),
    ).fetchone()[0]


def find(conn: sqlite3.Connection, consent_id: int) -> tuple[int, Consent] | None:
    """(subscriber id, consent) of one record."""
    row = conn.execute(f"{_SELECT} WHERE c.id = ?", (consent_id,)).fetchone()
    return (row[0], _consent(row[1:])) if row else None


def of_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> list[Consent]:
    rows = conn.execute(f"{_SELECT} WHERE c.subscriber_id = ? ORDER BY c.id", (subscriber_id,))
    return [_consent(row[1:]) for row in rows]


def confirm(conn: sqlite3.Connection, consent_id: int) -> bool:
    """Date the confirmation of a consent; False if it was confirmed before."""
    return conn.execute("UPDATE consents SET confirmed_at = ? WHERE id = ? AND confirmed_at "
                        "IS NULL", (utc_now(), consent_id)).rowcount > 0


_SELECT = ("SELECT c.subscriber_id, c.id, c.lists, c.source, t.text, c.text_hash, c.given_at, "
           "c.confirmed_at, c.client_ip FROM consents c "
           "LEFT JOIN consent_texts t ON t.hash = c.text_hash")


def _consent(row: tuple) -> Consent:  # type: ignore[type-arg]
    return Consent(row[0], json.loads(row[1]), *row[2:])
