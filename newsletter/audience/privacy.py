"""A person's rights over their data: everything held about them, and its erasure.

`export_person` answers "what do you hold about me?" (GDPR article 15) with every row that
names them: the subscriber, their lists, their consents, the messages the send ledger
recorded for them, and the bounces and complaints that came back about those messages.
`erase_person` answers "erase me" (article 17): those rows are deleted and overwritten on
disk, and only a keyed hash of the address stays, as a suppression that no import or `add`
can get past.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..database import utc_now
from . import consent
from .store import SubscriberStore


def export_person(store: SubscriberStore, email: str) -> dict[str, Any]:
    """Everything held about `email`, ready for json.dumps."""
    found = store.get(email)
    if found is None:
        erased = store.erased_at(email)
        return {"email": email.strip(), "held": False,
                **({"erased_at": erased, "kept": "a keyed hash of the address, so that "
                    "it is never added again"} if erased else {})}
    conn = store.connection
    created = conn.execute("SELECT created_at FROM subscribers WHERE id = ?",
                           (found.id,)).fetchone()[0]
    sends = conn.execute(
        "SELECT s.issue, d.list_name, d.email, d.state, d.attempts, d.updated_at, d.reply "
        "FROM deliveries d JOIN sends s ON s.id = d.send_id WHERE d.subscriber_id = ? "
        "ORDER BY s.created_at, s.id", (found.id,)).fetchall()
    events = conn.execute(
        "SELECT s.issue, e.kind, e.source, e.status, e.diagnostic, e.recipient, e.occurred_at,"
        " e.recorded_at FROM delivery_events e JOIN sends s ON s.id = e.send_id "
        "WHERE e.subscriber_id = ? ORDER BY e.id", (found.id,)).fetchall()
    return {
        "email": found.email, "held": True, "name": found.name, "status": found.status,
        "status_changed_at": _iso(found.status_changed_at), "status_reason": found.status_reason,
        "created_at": created, "fields": found.fields,
        "lists": [{"list": m.list_name, "status": m.status, "changed_at": _iso(m.changed_at),
                   "reason": m.reason} for m in store.memberships(found.id)],
        "consents": [c.as_json() for c in consent.of_subscriber(conn, found.id)],
        "sends": [{"issue": issue, "list": list_name, "address": address, "state": state,
                   "attempts": attempts, "last_attempt_at": _unix(updated), "server_reply": reply}
                  for issue, list_name, address, state, attempts, updated, reply in sends],
        "bounces": [{"issue": issue, "kind": kind, "via": source, "status": status,
                     "diagnostic": diagnostic, "address": recipient,
                     "occurred_at": _unix(occurred), "recorded_at": _unix(recorded)}
                    for issue, kind, source, status, diagnostic, recipient, occurred, recorded
                    in events],
    }


def erase_person(store: SubscriberStore, email: str) -> dict[str, int]:
    """Delete every row about `email` and keep its keyed hash; what was deleted, by kind.

    The address is suppressed from then on even if nothing was held (the request may come
    before the spreadsheet that holds them is imported). SQLite overwrites the deleted
    rows (secure_delete) and the write-ahead log is emptied into the file afterwards.
    """
    key, digest = store.key_of(email), store.hash_of(email)
    conn = store.connection
    conn.execute("PRAGMA secure_delete = ON")
    try:
        with store.transaction():
            row = conn.execute("SELECT id FROM subscribers WHERE key = ?", (key,)).fetchone()
            counts = {"subscriber": 0, "lists": 0, "consents": 0, "sends": 0, "bounces": 0}
            if row is not None:
                sid = row[0]
                for kind, sql in (("bounces", "DELETE FROM delivery_events "
                                              "WHERE subscriber_id = ?"),
                                  ("sends", "DELETE FROM deliveries WHERE subscriber_id = ?"),
                                  ("consents", "DELETE FROM consents WHERE subscriber_id = ?"),
                                  ("lists", "DELETE FROM memberships WHERE subscriber_id = ?"),
                                  ("subscriber", "DELETE FROM subscribers WHERE id = ?")):
                    counts[kind] = conn.execute(sql, (sid,)).rowcount
            conn.execute("DELETE FROM signup_mails WHERE hash = ?", (digest,))
            conn.execute("INSERT OR IGNORE INTO erased (hash, erased_at) VALUES (?, ?)",
                         (digest, utc_now()))
    finally:
        conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unix(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
