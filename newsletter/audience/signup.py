"""Double opt-in on the store's side: a sign-up request, its confirmation, the clean-up.

A request claims the address's one confirmation mail per interval first (a keyed hash in
`signup_mails`, so a flood naming one victim sends one mail and leaves no trace of the
address); only a claimed request writes anything: a pending subscriber if the address is
new, and a consent record naming the lists and the wording. Nothing about a known
subscriber changes until they press the button of the mail: then, and only then, a
pending, unsubscribed, bounced, complained or erased address becomes active on the lists
of that consent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..database import utc_now
from ..states import SubscriberStatus
from . import consent
from .store import SubscriberStore

CONFIRMED = "confirmed on the sign-up form"


@dataclass(frozen=True)
class SignupRequest:
    email: str
    name: str
    lists: Sequence[str]
    language: str  # "" when the form offers no choice
    source: str  # the form's URL, or the site that embeds it
    consent_text: str
    client_ip: str | None  # only when the settings ask to keep it


@dataclass(frozen=True)
class Claimed:
    """A confirmation mail to send now."""

    subscriber_id: int
    consent_id: int
    email: str
    name: str
    language: str
    address_hash: str  # to release the claim if the mail cannot be sent


@dataclass(frozen=True)
class Confirmed:
    email: str
    name: str
    subscriber_id: int
    lists: list[str]
    first: bool  # False: this consent was confirmed before; nothing changed now
    language: str


def request(store: SubscriberStore, signup: SignupRequest, *, interval: float,
            now: float) -> Claimed | None:
    """Record a sign-up and claim its confirmation mail; None if one went out within
    `interval` seconds (then nothing is written)."""
    key, digest = store.key_of(signup.email), store.hash_of(signup.email)
    with store.transaction() as conn:
        if conn.execute(
                "INSERT INTO signup_mails (hash, sent_at) VALUES (?, ?) ON CONFLICT (hash) DO "
                "UPDATE SET sent_at = excluded.sent_at WHERE signup_mails.sent_at <= ? "
                "RETURNING 1", (digest, now, now - interval)).fetchone() is None:
            return None
        stamp = utc_now()
        row = conn.execute("SELECT id, email, name, status, fields FROM subscribers "
                           "WHERE key = ?", (key,)).fetchone()
        if row is None:
            fields = json.dumps({"language": signup.language} if signup.language else {})
            sid = conn.execute(
                "INSERT INTO subscribers (email, key, name, fields, status, status_changed_at,"
                " status_reason, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) "
                "RETURNING id", (signup.email, key, signup.name, fields, stamp,
                                 "signed up on the form, not confirmed yet", stamp)
            ).fetchone()[0]
            email, name, language = signup.email, signup.name, signup.language
        else:
            sid, email, name, status, fields = row
            language = signup.language or json.loads(fields).get("language", "")
            if status == SubscriberStatus.PENDING:  # the latest form wins, and its clock
                patch = json.dumps({"language": signup.language} if signup.language else {})
                conn.execute("UPDATE subscribers SET name = iif(? != '', ?, name), "
                             "fields = json_patch(fields, ?), status_changed_at = ? "
                             "WHERE id = ?", (signup.name, signup.name, patch, stamp, sid))
                name = signup.name or name
            name = name or signup.name
        consent_id = consent.record(conn, sid, list(signup.lists), signup.source,
                                    text=signup.consent_text, client_ip=signup.client_ip)
    return Claimed(sid, consent_id, email, name, language, digest)


def release(store: SubscriberStore, claimed: Claimed) -> None:
    """The confirmation mail could not be sent: let the next request try again."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM signup_mails WHERE hash = ?", (claimed.address_hash,))


def confirm(store: SubscriberStore, subscriber_id: int, consent_id: int) -> Confirmed | None:
    """The button of a confirmation mail was pressed; None if the sign-up is gone."""
    with store.transaction() as conn:
        found = consent.find(conn, consent_id)
        row = conn.execute("SELECT email, key, name, fields FROM subscribers WHERE id = ?",
                           (subscriber_id,)).fetchone()
        if found is None or found[0] != subscriber_id or row is None:
            return None
        email, key, name, fields = row
        lists = found[1].lists
        first = consent.confirm(conn, consent_id)
        if first:
            stamp = utc_now()
            conn.execute("UPDATE subscribers SET status = 'active', status_changed_at = ?, "
                         "status_reason = ? WHERE id = ? AND status != 'active'",
                         (stamp, CONFIRMED, subscriber_id))
            for list_name in lists:
                conn.execute("INSERT OR IGNORE INTO lists (name, created_at) VALUES (?, ?)",
                             (list_name, stamp))
                conn.execute(
                    "INSERT INTO memberships (subscriber_id, list_id, status, changed_at, "
                    "reason) VALUES (?, (SELECT id FROM lists WHERE name = ?), 'active', ?, ?) "
                    "ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = 'active', "
                    "changed_at = excluded.changed_at, reason = excluded.reason "
                    "WHERE memberships.status != 'active'",
                    (subscriber_id, list_name, stamp, CONFIRMED))
            conn.execute("DELETE FROM erased WHERE hash = address_hash(?)", (key,))
    return Confirmed(email, name, subscriber_id, lists, first,
                     json.loads(fields).get("language", ""))


def purge_pending(store: SubscriberStore, older_than: float) -> int:
    """Forget sign-ups never confirmed within `older_than` seconds; how many."""
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than)
              ).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction() as conn:
        stale = "SELECT id FROM subscribers WHERE status = 'pending' AND status_changed_at < ?"
        conn.execute(f"DELETE FROM consents WHERE subscriber_id IN ({stale})", (cutoff,))
        conn.execute(f"DELETE FROM memberships WHERE subscriber_id IN ({stale})", (cutoff,))
        return conn.execute(stale.replace("SELECT id FROM", "DELETE FROM"),
                            (cutoff,)).rowcount
