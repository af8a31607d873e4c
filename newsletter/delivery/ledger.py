"""The send ledger: one row per recipient of an issue, in the subscriber database.

When a send starts its recipients are frozen (one row each, de-duplicated across lists);
every row then moves pending -> sending -> sent | deferred | failed | unknown | skipped.
A row is `sent` only after the server accepted the message. Rows are claimed in batches;
the journal (journal.py) records each hand-over and verdict at once, and the ledger
commits them in batches. All methods are thread-safe.

A storage error (the database locked by another program for longer than its busy timeout,
a full disk, a journal that cannot be written) becomes one StoreError that says what and
which file: the run stops, and whatever the database could not take is in the journal,
which the next run replays.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..envelope import Recipient
from ..errors import NewsletterError
from ..states import DeliveryState, SendState
from .journal import Journal, Verdict, replay
from .sends import SendRecord, find_send
from .storage import guarded

FLUSH_EVERY = 1.0  # seconds between ledger commits while sending
FLUSH_SIZE = 500  # or this many verdicts, whichever comes first


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    recipient: Recipient
    attempts: int  # including this one
    failed_since: float | None
    edition: str | None = None  # the language of the edition this recipient gets


@dataclass(frozen=True)
class StartReport:
    send: SendRecord
    created: bool
    added: int  # recipients frozen now (new send, new lists or --include-new)
    recovered_unknown: int  # handed over by a run that died before the verdict
    recovered_pending: int  # claimed by a run that died before handing them over
    requeued_unknown: int  # put back by --resend-unknown


class Ledger:
    """The rows of one issue's send, and the journal of the run that holds its lock."""

    def __init__(self, connection: sqlite3.Connection, database: Path, issue: str) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.issue = issue
        self.database = database
        self.busy_timeout = connection.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
        self._recovered: tuple[int, int] | None = None
        self.journal_path = database.with_name(f"{database.name}-{issue}.journal")
        self._journal: Journal | None = None
        self._run_id: int | None = None  # this run's row in send_runs, once started
        self._buffer: list[Verdict] = []
        self._in_flight: set[int] = set()
        self._last_flush = time.monotonic()
        self.send: SendRecord | None = find_send(connection, issue)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back if anything in between fails."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- starting and resuming -------------------------------------------------------

    @guarded
    def recover(self) -> tuple[int, int]:
        """Settle what a dead run left, once: (now unknown, now pending again).

        Call only while holding the issue's send lock, before counting anything.
        """
        with self._lock:
            if self._recovered is None:
                self._recovered = self._recover()
            return self._recovered

    @guarded
    def start(self, lists: Sequence[str], content_hash: str, *, include_new: bool = False,
              resend_unknown: bool = False, transport: str | None = None,
              new_version: bool = False, issue_date: str | None = None,
              source: str | None = None, now: float | None = None) -> StartReport:
        """Create or resume the send; call only while holding the issue's send lock.

        Resuming with other content is refused unless `new_version`: then the new version
        is recorded beside the first, and `newsletter status` shows both.
        """
        now = time.time() if now is None else now
        with self._lock:
            changed = self.send is not None and self.send.content_hash != content_hash
            if changed and not new_version:
                raise NewsletterError(f"{self.issue}: the issue changed since its send started "
                                      "(another version of the composed email); nothing sent")
            recovered_unknown, recovered_pending = self.recover()
            created = self.send is None
            with self._transaction():
                if self.send is None:
                    self._db.execute(
                        "INSERT INTO sends (issue, lists, content_hash, state, created_at, "
                        "started_at, transport) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                        (self.issue, json.dumps(list(lists)), content_hash, now, now,
                         transport))
                    known: list[str] = []
                else:
                    known = list(self.send.lists)
                send_id = self._send_id()
                if created or changed:
                    self._db.execute(
                        "INSERT INTO send_versions (send_id, content_hash, issue_date, source, "
                        "since) VALUES (?, ?, ?, ?, ?)",
                        (send_id, content_hash, issue_date, source, now))
                    self._db.execute("UPDATE sends SET content_hash = ? WHERE id = ?",
                                     (content_hash, send_id))
                new_lists = [name for name in lists if name not in known]
                added = self._freeze(send_id, list(known) + new_lists if include_new
                                     else new_lists)
                requeued = self._db.execute(
                    "UPDATE deliveries SET state = 'pending' WHERE send_id = ? AND "
                    "state = 'unknown'", (send_id,)).rowcount if resend_unknown else 0
                self._db.execute(
                    "UPDATE sends SET lists = ?, state = 'running', finished_at = NULL, "
                    "started_at = COALESCE(started_at, ?), transport = COALESCE(?, transport) "
                    "WHERE id = ?", (json.dumps(known + new_lists), now, transport, send_id))
                self._run_id = self._db.execute(
                    "INSERT INTO send_runs (send_id, started_at) VALUES (?, ?)",
                    (send_id, now)).lastrowid
            self.send = find_send(self._db, self.issue)
            assert self.send is not None
            self._journal = Journal(self.journal_path)
            return StartReport(self.send, created, added, recovered_unknown, recovered_pending,
                               requeued)

    def _send_id(self) -> int:
        return self._db.execute("SELECT id FROM sends WHERE issue = ?",
                                (self.issue,)).fetchone()[0]

    def _freeze(self, send_id: int, lists: Sequence[str]) -> int:
        """Add the active members of `lists`; the first list a subscriber is on wins."""
        added = 0
        for name in lists:
            added += self._db.execute(
                "INSERT OR IGNORE INTO deliveries (send_id, subscriber_id, email, list_name) "
                "SELECT ?, subscriber_id, email, list_name FROM active_recipients "
                "WHERE list_name = ? ORDER BY subscriber_id", (send_id, name)).rowcount
        return added

    def _recover(self) -> tuple[int, int]:
        """Settle what a dead run left: replay its journal, then free unclaimed rows."""
        if self.send is None:
            self.journal_path.unlink(missing_ok=True)
            return 0, 0
        journal = replay(self.journal_path)
        with self._transaction():
            self._apply(list(journal.verdicts.values()))
            unknown = [(time.time(), i) for i in journal.without_verdict]
            self._db.executemany(
                "UPDATE deliveries SET state = 'unknown', updated_at = ?, reply = "
                "'the run stopped after handing the message over and before the server "
                "answered' WHERE id = ? AND state = 'sending'", unknown)
            pending = self._db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = MAX(attempts - 1, 0) "
                "WHERE send_id = ? AND state = 'sending'", (self.send.id,)).rowcount
        self.journal_path.unlink(missing_ok=True)
        return len(unknown), pending

    # -- the send loop ---------------------------------------------------------------

    @guarded
    def claim(self, limit: int, now: float | None = None,
              edition_of: Callable[[Recipient], str] | None = None) -> list[Claimed]:
        """Up to `limit` recipients due now, marked `sending`; unsubscribed ones skipped.

        `edition_of` picks each recipient's edition, recorded with the claim (for `status`).
        """
        now = time.time() if now is None else now
        with self._lock:
            self._maybe_flush()
            send_id = self._current_send_id()
            rows = self._db.execute(_CLAIM + "state = 'deferred' AND next_attempt_at <= ? "
                                    "LIMIT ?", (send_id, now, limit)).fetchall()
            if len(rows) < limit:
                rows += self._db.execute(_CLAIM + "state = 'pending' ORDER BY id LIMIT ?",
                                         (send_id, limit - len(rows))).fetchall()
            if not rows:
                return []
            subscribers = self._still_subscribed(rows)
            claimed, skipped = [], []
            for delivery_id, subscriber_id, email, list_name, attempts, failed_since in rows:
                found = subscribers.get((subscriber_id, list_name))
                if found is None:
                    skipped.append((now, delivery_id))
                    continue
                name, fields = found
                recipient = Recipient(subscriber_id, email, name, list_name,
                                      json.loads(fields) if fields != "{}" else {})
                edition = edition_of(recipient) if edition_of else None
                claimed.append(Claimed(delivery_id, recipient, attempts + 1, failed_since,
                                       edition))
            with self._transaction() as db:
                db.executemany("UPDATE deliveries SET state = 'sending', attempts = "
                               "attempts + 1, updated_at = ?, edition = COALESCE(?, edition) "
                               "WHERE id = ?",
                               [(now, c.edition, c.delivery_id) for c in claimed])
                db.executemany("UPDATE deliveries SET state = 'skipped', updated_at = ?, "
                               "reply = 'no longer subscribed' WHERE id = ?", skipped)
            return claimed

    def _still_subscribed(self, rows: list[tuple]) -> dict[tuple[int, str], tuple[str, str]]:  # type: ignore[type-arg]
        """Name and fields of the claimed subscribers still active on their list, now."""
        by_list: dict[str, list[int]] = {}
        for _, subscriber_id, _, list_name, _, _ in rows:
            by_list.setdefault(list_name, []).append(subscriber_id)
        found = {}
        for list_name, ids in by_list.items():
            marks = ",".join("?" * len(ids))
            for subscriber_id, name, fields in self._db.execute(
                    "SELECT subscriber_id, name, fields FROM active_recipients WHERE "
                    f"list_name = ? AND subscriber_id IN ({marks})", (list_name, *ids)):
                found[(subscriber_id, list_name)] = (name or "", fields)
        return found

    def _current_send_id(self) -> int:
        assert self.send is not None, "start() first"
        return self.send.id

    @guarded
    def begin(self, delivery_ids: list[int]) -> None:
        """Record that these messages are being handed over, before handing them over."""
        with self._lock:
            assert self._journal is not None
            self._journal.begun(delivery_ids)
            self._in_flight.update(delivery_ids)

    @guarded
    def record(self, *verdicts: Verdict) -> None:
        """Journal the verdicts at once (one write), and commit them with the next flush."""
        with self._lock:
            assert self._journal is not None
            self._in_flight.difference_update(v.delivery_id for v in verdicts)
            self._buffer.extend(verdicts)
            try:
                self._journal.verdict(*verdicts)
            except OSError:
                self.flush()  # the database must hold what the journal could not
                raise
            if len(self._buffer) >= FLUSH_SIZE:
                self.flush()

    @guarded
    def release(self, delivery_ids: list[int], reason: str = "") -> None:
        """Claimed but never handed over (the run is stopping, or the transport refused
        before taking anything): back to pending, and the attempt does not count."""
        if not delivery_ids:
            return
        with self._lock:
            begun = [i for i in delivery_ids if i in self._in_flight]
            if begun:  # the journal said they were being handed over: say they were not
                assert self._journal is not None
                self._in_flight.difference_update(begun)
                self._journal.verdict(*(Verdict(i, DeliveryState.PENDING, reason, at=time.time())
                                        for i in begun))
            self.flush()
            with self._transaction() as db:
                db.executemany("UPDATE deliveries SET state = 'pending', attempts = "
                               "MAX(attempts - 1, 0) WHERE id = ? AND state = 'sending'",
                               [(i,) for i in delivery_ids])

    def _maybe_flush(self) -> None:
        if self._buffer and time.monotonic() - self._last_flush > FLUSH_EVERY:
            self.flush()

    @guarded
    def flush(self) -> None:
        """Commit buffered verdicts; shrink the journal once it has grown."""
        with self._lock:
            if self._buffer:
                with self._transaction():
                    self._apply(self._buffer)
                self._buffer = []
            self._last_flush = time.monotonic()
            if self._journal is not None and self._journal.needs_rotation():
                self._journal.rotate(self._in_flight)

    def _apply(self, verdicts: Sequence[Verdict]) -> None:
        self._db.executemany(
            "UPDATE deliveries SET state = ?, reply = ?, next_attempt_at = ?, "
            "first_failure_at = ?, updated_at = ?, suppress = ?, "
            "message_id = coalesce(?, message_id) WHERE id = ?",
            [(v.state, v.reply[:500], v.next_attempt_at, v.failed_since, v.at, int(v.suppress),
              v.message_id or None, v.delivery_id) for v in verdicts])

    @guarded
    def suppressions(self) -> list[tuple[int, str, str]]:
        """Hard bounces not yet copied to the subscriber store: (delivery id, email, reply)."""
        with self._lock:
            self.flush()
            return self._db.execute("SELECT id, email, reply FROM deliveries WHERE send_id = ? "
                                    "AND suppress = 1", (self._current_send_id(),)).fetchall()

    @guarded
    def suppressions_applied(self, delivery_ids: Sequence[int]) -> None:
        with self._lock:
            self._db.executemany("UPDATE deliveries SET suppress = 0 WHERE id = ?",
                                 [(i,) for i in delivery_ids])

    @guarded
    def sent_since(self, since: float) -> int:
        """Messages accepted since `since`, over every send: for hourly and daily limits."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM deliveries WHERE state = 'sent' AND "
                                    "updated_at >= ?", (since,)).fetchone()[0]

    @guarded
    def counts(self) -> dict[str, int]:
        """Recipients of this issue's send by state (empty before the first send)."""
        with self._lock:
            self.flush()
            if self.send is None:
                return {}
            return dict(self._db.execute("SELECT state, count(*) FROM deliveries WHERE "
                                         "send_id = ? GROUP BY state", (self.send.id,)))

    @guarded
    def outstanding(self, now: float | None = None) -> tuple[int, float | None]:
        """Recipients still to send now, and when the next deferred one is due."""
        now = time.time() if now is None else now
        with self._lock:
            self.flush()
            send_id = self._current_send_id()
            pending = self._db.execute(
                "SELECT count(*) FROM deliveries WHERE send_id = ? AND (state = 'pending' OR "
                "(state = 'deferred' AND next_attempt_at <= ?))", (send_id, now)).fetchone()[0]
            next_due = self._db.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE send_id = ? AND "
                "state = 'deferred'", (send_id,)).fetchone()[0]
            return pending, next_due

    @guarded
    def newcomers(self, lists: Sequence[str]) -> int:
        """Active subscribers of `lists` who are not in this send (they joined after it
        started): what --include-new would add."""
        with self._lock:
            marks = ",".join("?" * len(lists))
            return self._db.execute(
                "SELECT count(DISTINCT subscriber_id) FROM active_recipients WHERE list_name "
                f"IN ({marks}) AND subscriber_id NOT IN (SELECT subscriber_id FROM deliveries "
                "WHERE send_id = ?)", (*lists, self._current_send_id())).fetchone()[0]

    def close(self) -> None:
        if self._journal is not None:  # a run that could not finish: keep it for the next
            self._journal.close()
            self._journal = None
        self._db.close()

    @guarded
    def finish(self, state: SendState, now: float | None = None) -> None:
        """Commit everything and close the journal; `state` is the send's new state.

        If the database cannot take it, the journal stays for the next run to replay.
        """
        now = time.time() if now is None else now
        with self._lock:
            self.flush()
            self._db.execute("UPDATE sends SET state = ?, finished_at = ? WHERE id = ?",
                             (state, now, self._current_send_id()))
            self._db.execute("UPDATE send_runs SET finished_at = ? WHERE id = ?",
                             (now, self._run_id))
            if self._journal is not None:
                self._journal.close(remove=not self._in_flight)
                self._journal = None


_CLAIM = """
    SELECT id, subscriber_id, email, list_name, attempts, first_failure_at
    FROM deliveries WHERE send_id = ? AND """
