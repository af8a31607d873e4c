"""The subscriber store: people, their status and their lists. The only SQL about people.

A subscriber is unique on a key (the address as email-validator normalises it, lower-cased)
and keeps the address as written. A status other than `active` suppresses them everywhere;
a membership of one list can be unsubscribed on its own (the one-click link of a list).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # type: ignore[attr-defined]
from pathlib import Path
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from ..config import Settings
from ..database import BUSY_TIMEOUT, open_database, utc_now
from ..errors import StoreError
from ..grammar import CONTROL_CHARACTERS, FIELD_CONTROL_CHARACTERS, LIST_NAME, printable
from .merging import DUPLICATES, MERGE, STAGING, SUPPRESSING

# The common shape of an address, checked without email-validator's per-character work;
# anything else goes through email-validator, and so does each new domain (then cached).
_PLAIN = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@([A-Za-z0-9.-]+)\Z")
_COLUMNS = "s.id, s.email, s.name, s.status, s.status_changed_at, s.status_reason, s.fields"

@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: str  # active, unsubscribed, bounced or complained
    status_changed_at: dt.datetime
    status_reason: str
    fields: dict[str, str]  # extra template fields: city, organisation, language...


@dataclass(frozen=True)
class Membership:
    list_name: str
    status: str  # active or unsubscribed
    changed_at: dt.datetime
    reason: str


@dataclass(frozen=True)
class ListCounts:
    name: str
    active: int
    unsubscribed: int
    bounced: int
    complained: int

    @property
    def total(self) -> int:
        return self.active + self.unsubscribed + self.bounced + self.complained


class NewRow(NamedTuple):
    """One subscriber to merge into a list; `row` locates it in its source file.

    A `status` other than active records that the address left (with when and why), as
    a Mailchimp unsubscribed or cleaned export says.
    """

    row: int
    email: str
    key: str
    name: str
    fields: dict[str, str]
    status: str = "active"
    status_at: str = ""  # ISO 8601 UTC, as utc_now() writes it; empty: the time of import
    reason: str = ""
    consent_at: str = ""  # when they opted in elsewhere (OPTIN_TIME); empty: now
    confirmed_at: str = ""  # when they confirmed it (CONFIRM_TIME)


@dataclass(frozen=True)
class MergeResult:
    added: int  # new on the list (or back on it with --resubscribe)
    updated: int  # already on it; name or fields changed
    unchanged: int
    suppressed: int  # unsubscribed, bounced or complained: left alone
    duplicates: list[tuple[int, int]]  # (row, earlier row with the same address)
    left: dict[str, int] = field(default_factory=dict)  # newly unsubscribed, bounced...


def control_character_problem(name: str, fields: dict[str, str]) -> str:
    """Why a name or field cannot be stored ('' if it can): it would break a header or line.

    A field may span lines (LF only): fields fill the bodies, never a header.
    """
    for what, value, forbidden in (("name", name, CONTROL_CHARACTERS),
                                   *((f"field {k}", v, FIELD_CONTROL_CHARACTERS)
                                     for k, v in fields.items())):
        found = forbidden.search(value)
        if found:
            return (f"{what} {printable(value)} contains a control character "
                    f"(U+{ord(found.group()):04X}, a line break or the like); fix it")
    return ""


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII local part: only a server offering SMTPUTF8 (RFC 6531) can take it."""
    return not address.rpartition("@")[0].isascii()


def address_key(address: str) -> str:
    """The unique key of `address`; raises EmailNotValidError (a ValueError) if invalid."""
    if len(address) <= 64 and (match := _PLAIN.match(address)) and _plain_domain(match[1]):
        return address.lower()
    return validate_email(address, check_deliverability=False).normalized.lower()


@functools.lru_cache(maxsize=65536)
def _plain_domain(domain: str) -> bool:
    # True when email-validator accepts the domain and only lower-cases it. Cached: a
    # million addresses share a few thousand domains.
    try:
        checked = validate_email("x@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return False
    return checked.domain == domain.lower()


def _subscriber(row: tuple) -> Subscriber:  # type: ignore[type-arg]
    return Subscriber(row[0], row[1], row[2], row[3], _time(row[4]), row[5], json.loads(row[6]))


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _json(fields: dict[str, str]) -> str:
    # json.dumps costs three times as much, a second per million rows.
    return "{" + ",".join([_quote(k) + ":" + _quote(v) for k, v in fields.items()]) + "}"


class SubscriberStore:
    """Subscribers and lists in the SQLite file at `path` (created on first use)."""

    def __init__(self, path: Path, address_hash: Callable[[str], str] | None = None, *,
                 busy_timeout: float = BUSY_TIMEOUT) -> None:
        """`address_hash` (Signer.address_hash) recognises erased addresses; a store that
        holds some refuses to add anyone without it."""
        self.path = path
        self._conn = open_database(path, busy_timeout=busy_timeout)
        self._hash = address_hash
        self._conn.create_function("address_hash", 1, self._address_hash, deterministic=True)

    def _address_hash(self, key: str) -> str:
        if self._hash is None:  # checked before any statement calls it; see _check_erased
            raise StoreError(f"{self.path}: this command was not given the key that "
                             "recognises erased addresses")
        return self._hash(key)

    def hash_of(self, email: str) -> str:
        """The keyed hash an erasure keeps of `email`."""
        return self._address_hash(self.key_of(email))

    def _check_erased(self) -> bool:
        """True if the store holds erased addresses (and can recognise them)."""
        if self._conn.execute("SELECT NOT EXISTS (SELECT 1 FROM erased)").fetchone()[0]:
            return False
        if self._hash is None:
            raise StoreError(f"{self.path} holds erased addresses, and this command was not "
                             "given the key that recognises them")
        return True

    def erased_at(self, email: str) -> str | None:
        """When this address was erased (it is kept as a keyed hash only), or None."""
        if not self._check_erased():
            return None
        row = self._conn.execute("SELECT erased_at FROM erased WHERE hash = ?",
                                 (self.hash_of(email),)).fetchone()
        return row[0] if row else None

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection: for the audience modules that keep their own tables, and
        for a caller that records its own rows in the same transaction as a change here (the
        bounce intake: an event and the status it causes, together)."""
        return self._conn

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error, or if not `commit`); the store's
        changes inside it join it."""
        if self._conn.in_transaction and commit:  # inside another transaction(): part of it
            yield self._conn
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # busy for longer than the timeout
            raise StoreError(f"{self.path}: {exc}; try again when the other command ends"
                             ) from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT" if commit else "ROLLBACK")

    def key_of(self, email: str) -> str:
        """The unique key of `email`; StoreError if it is not a valid address."""
        try:
            return address_key(email.strip())
        except ValueError as exc:
            raise StoreError(f"{email!r} is not a valid address: {exc}") from None

    # Reading

    def get(self, email: str) -> Subscriber | None:
        """The subscriber with this address, in any letter case."""
        try:
            key = address_key(email.strip())
        except ValueError:
            return None
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM subscribers s WHERE key = ?",
                                 (key,)).fetchone()
        return _subscriber(row) if row else None

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM subscribers s WHERE id = ?",
                                 (subscriber_id,)).fetchone()
        return _subscriber(row) if row else None

    def memberships(self, subscriber_id: int) -> list[Membership]:
        rows = self._conn.execute(
            "SELECT l.name, m.status, m.changed_at, m.reason FROM memberships m "
            "JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = ? ORDER BY l.name",
            (subscriber_id,))
        return [Membership(name, status, _time(at), reason) for name, status, at, reason in rows]

    def lists(self) -> list[ListCounts]:
        """Every list with its members counted by status (a global status wins)."""
        rows = self._conn.execute("""
            SELECT l.name,
                   total(s.status = 'active' AND m.status = 'active'),
                   total(s.status = 'unsubscribed' OR
                         (s.status = 'active' AND m.status = 'unsubscribed')),
                   total(s.status = 'bounced'), total(s.status = 'complained')
            FROM lists l
            LEFT JOIN memberships m ON m.list_id = l.id
            LEFT JOIN subscribers s ON s.id = m.subscriber_id
            GROUP BY l.id ORDER BY l.name""")
        return [ListCounts(name, *(int(n) for n in counts)) for name, *counts in rows]

    def stream(self, list_names: Sequence[str], only_active: bool = True,
               batch_size: int = 1000) -> Iterator[Subscriber]:
        """The members of any of these lists, each once, in id order, read in batches."""
        cursor = self._conn.execute(f"SELECT {_COLUMNS} {self._members(list_names, only_active)}"
                                    " ORDER BY s.id", self._list_ids(list_names))
        try:
            while rows := cursor.fetchmany(batch_size):
                yield from map(_subscriber, rows)
        finally:
            cursor.close()

    def count_active(self, list_names: Sequence[str]) -> int:
        """How many subscribers `stream(list_names)` would give."""
        return self._conn.execute(f"SELECT count(*) {self._members(list_names, True)}",
                                  self._list_ids(list_names)).fetchone()[0]

    def field_names(self, list_names: Sequence[str]) -> list[str]:
        """The extra fields that active members of these lists have, sorted."""
        rows = self._conn.execute(
            f"SELECT DISTINCT f.key FROM (SELECT s.fields {self._members(list_names, True)}) s,"
            " json_each(s.fields) f ORDER BY f.key", self._list_ids(list_names))
        return [name for (name,) in rows]

    def _members(self, list_names: Sequence[str], only_active: bool) -> str:
        marks = ", ".join("?" * len(list_names))
        active = " AND m.status = 'active'" if only_active else ""
        return (f"FROM subscribers s WHERE EXISTS (SELECT 1 FROM memberships m WHERE "
                f"m.list_id IN ({marks}) AND m.subscriber_id = s.id{active})"
                + (" AND s.status = 'active'" if only_active else ""))

    def _list_ids(self, list_names: Sequence[str]) -> list[int]:
        known = dict(self._conn.execute("SELECT name, id FROM lists").fetchall())
        missing = [name for name in list_names if name not in known]
        if missing or not list_names:
            raise StoreError(f"no list named {', '.join(missing) or '(none given)'}; lists: "
                             + (", ".join(sorted(known)) or "none yet"))
        return [known[name] for name in list_names]

    # Changing

    def add(self, email: str, list_name: str, name: str = "",
            fields: dict[str, str] | None = None, *, resubscribe: bool = False,
            resubscribe_bounced: bool = False, reason: str = "added by hand") -> str:
        """Add one address to a list: 'added', 'updated', 'unchanged' or 'suppressed'."""
        problem = control_character_problem(name.strip(), fields or {})
        if problem:
            raise StoreError(f"{email}: {problem}; nothing added")
        row = NewRow(1, email.strip(), self.key_of(email), name.strip(), fields or {})
        result = self.merge([row], list_name, resubscribe=resubscribe,
                            resubscribe_bounced=resubscribe_bounced, reason=reason)
        return next(state for state in ("added", "updated", "unchanged", "suppressed")
                    if getattr(result, state))

    def remove(self, email: str, list_name: str) -> bool:
        """Take an address off a list without suppressing it; False if it was not on it."""
        with self.transaction() as conn:
            return conn.execute(
                "DELETE FROM memberships WHERE subscriber_id = (SELECT id FROM subscribers "
                "WHERE key = ?) AND list_id = (SELECT id FROM lists WHERE name = ?)",
                (self.key_of(email), list_name)).rowcount > 0

    def unsubscribe(self, email: str, list_name: str | None = None,
                    reason: str = "") -> Subscriber | None:
        """Suppress an address: on one list if `list_name` is given, else everywhere."""
        if list_name is None:
            return self._set_status(email, "unsubscribed", reason)
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE memberships SET changed_at = iif(status = 'active', ?, changed_at), "
                "reason = iif(status = 'active', ?, reason), status = 'unsubscribed' "
                "WHERE subscriber_id = (SELECT id FROM subscribers WHERE key = ?) "
                "AND list_id = (SELECT id FROM lists WHERE name = ?) "
                "RETURNING subscriber_id", (utc_now(), reason, self.key_of(email), list_name))
            found = changed.fetchone()
        if found is None:
            raise StoreError(f"{email} is not on the list {list_name}")
        return self.get_by_id(found[0])  # type: ignore[return-value]

    def resubscribe_list(self, subscriber_id: int, list_name: str, reason: str) -> bool:
        """Undo an unsubscribe from one list; False if there is none to undo.

        Never lifts a bounce, a complaint or an unsubscribe from everything (the subscriber
        must be `active`), and never puts someone on a list they were not on: checked in
        the same statement, so a complaint recorded meanwhile cannot be overridden.
        """
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE memberships SET status = 'active', changed_at = ?, reason = ? "
                "WHERE subscriber_id = ? AND status = 'unsubscribed' "
                "AND list_id = (SELECT id FROM lists WHERE name = ?) "
                "AND (SELECT status FROM subscribers WHERE id = ?) = 'active'",
                (utc_now(), reason, subscriber_id, list_name, subscriber_id)).rowcount > 0

    def mark_bounced(self, email: str, reason: str) -> Subscriber | None:
        """A hard bounce: never mail this address again unless told to explicitly."""
        return self._set_status(email, "bounced", reason)

    def mark_complained(self, email: str, reason: str) -> Subscriber | None:
        """A spam complaint: suppress like an unsubscribe."""
        return self._set_status(email, "complained", reason)

    def _set_status(self, email: str, status: str, reason: str) -> Subscriber | None:
        # An unknown address is recorded too, so that a later import cannot add it back;
        # an erased one is suppressed already, and stays a hash (None).
        now = utc_now()
        if self._hash is not None and self.get(email) is None and self.erased_at(email):
            return None
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO subscribers (email, key, status, status_changed_at, status_reason,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "status = excluded.status, status_changed_at = excluded.status_changed_at, "
                "status_reason = excluded.status_reason WHERE status != excluded.status",
                (email.strip(), self.key_of(email), status, now, reason, now))
        return self.get(email)

    def merge(self, rows: Iterable[NewRow], list_name: str, *, resubscribe: bool = False,
              resubscribe_bounced: bool = False, reason: str = "", source: str = "",
              dry_run: bool = False) -> MergeResult:
        """Add or update many subscribers on one list in a single transaction.

        Rows repeating an earlier row's address are left out and reported. Each row added
        to the list gets a consent record from `source` (default: `reason`). Nothing is
        written if `dry_run`, but the counts are the same.
        """
        if not LIST_NAME.match(list_name):
            raise StoreError(f"{list_name!r} is not a list name: use lower-case letters, "
                             "digits, - and _ (as in the issue file's lists:)")
        conn = self._conn
        conn.executescript(STAGING)
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO import_rows (row, key, email, name, fields, status,"
                             " status_at, reason, consent_at, confirmed_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             ((r.row, r.key, r.email, r.name, _json(r.fields), r.status,
                               r.status_at, r.reason, r.consent_at, r.confirmed_at)
                              for r in rows))
            conn.execute("COMMIT")
            conn.execute("CREATE INDEX temp.import_rows_key ON import_rows (key, row)")
            duplicates = conn.execute(DUPLICATES).fetchall()
            self._check_erased()
            conn.executemany("DELETE FROM import_rows WHERE row = ?", ((r,) for r, _ in duplicates))
            params = {"list": list_name, "now": utc_now(), "reason": reason,
                      "source": source or reason or "added", "resub": resubscribe,
                      "bounced": resubscribe_bounced}
            with self.transaction(commit=not dry_run):
                conn.execute("INSERT OR IGNORE INTO lists (name, created_at) VALUES (:list, :now)",
                             params)
                for statement in MERGE:
                    conn.execute(statement, params)
                counts = dict(conn.execute("SELECT state, count(*) FROM import_rows "
                                           "GROUP BY 1").fetchall())
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("DROP TABLE temp.import_rows")
        return MergeResult(counts.get("added", 0), counts.get("updated", 0),
                           counts.get("unchanged", 0), counts.get("suppressed", 0), duplicates,
                           {status: counts.get(status, 0) for status in SUPPRESSING})


def store_for(settings: Settings, path: Path | None = None) -> SubscriberStore:
    """The store at `path` (default: the configured database), able to recognise erased
    addresses with the newsletter's secret."""
    from .tokens import signer_for

    return SubscriberStore(path or settings.database_path, signer_for(settings).address_hash,
                           busy_timeout=settings.busy_timeout)
