"""The preferences page's changes: which lists, which language, or nothing at all.

Whoever holds a preferences link received a mail at the address, so joining one of the
public lists there needs no second confirmation: it is recorded as a consent confirmed at
once. Only an active subscriber can join; someone who left everything comes back through
the sign-up form, like anyone else.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..database import utc_now
from ..states import SubscriberStatus
from . import consent
from .store import SubscriberStore

SOURCE = "preferences page"


def save(store: SubscriberStore, subscriber_id: int, offered: Sequence[str],
         wanted: Collection[str], *, language: str | None, consent_text: str) -> list[str]:
    """Set the subscriber's membership of each offered list; the lists joined now."""
    joined: list[str] = []
    now = utc_now()
    with store.transaction() as conn:
        row = conn.execute("SELECT status FROM subscribers WHERE id = ?",
                           (subscriber_id,)).fetchone()
        if row is None:
            return joined
        active = row[0] == SubscriberStatus.ACTIVE
        for name in offered:
            if name in wanted and active:
                conn.execute("INSERT OR IGNORE INTO lists (name, created_at) VALUES (?, ?)",
                             (name, now))
                if conn.execute(
                        "INSERT INTO memberships (subscriber_id, list_id, status, changed_at, "
                        "reason) VALUES (?, (SELECT id FROM lists WHERE name = ?), 'active', ?, "
                        "?) ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = "
                        "'active', changed_at = excluded.changed_at, reason = excluded.reason "
                        "WHERE memberships.status != 'active'",
                        (subscriber_id, name, now, SOURCE)).rowcount:
                    joined.append(name)
            elif name not in wanted:
                conn.execute(
                    "UPDATE memberships SET status = 'unsubscribed', changed_at = ?, reason = ? "
                    "WHERE subscriber_id = ? AND status = 'active' "
                    "AND list_id = (SELECT id FROM lists WHERE name = ?)",
                    (now, SOURCE, subscriber_id, name))
        if language is not None:  # the subscriber's language lives in fields["language"]
            conn.execute("UPDATE subscribers SET fields = json_set(fields, '$.language', ?) "
                         "WHERE id = ?", (language, subscriber_id))
        if joined:
            made = consent.record(conn, subscriber_id, joined, SOURCE, text=consent_text)
            consent.confirm(conn, made)
    return joined
