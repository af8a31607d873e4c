"""The SQLite file shared by the subscriber store and the send ledger, and its migrations.

Every schema change is a numbered `Migration` appended to MIGRATIONS; a database records
what it has applied in `schema_migrations`, so an older file is brought up to date on open
without losing data. Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str  # a script; it runs in one transaction with the schema_migrations record
    # A table that others reference is rebuilt: foreign keys are checked once at the end
    # (SQLite's documented procedure for schema changes ALTER TABLE cannot make).
    rebuilds: bool = False


MIGRATIONS: list[Migration] = [
    Migration(1, "subscribers, lists and memberships", """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused
            email TEXT NOT NULL,                   -- as the subscriber wrote it
            key TEXT NOT NULL UNIQUE,              -- normalised and lower-cased
            name TEXT NOT NULL DEFAULT '',
            fields TEXT NOT NULL DEFAULT '{}',     -- JSON object of extra fields
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
            status_changed_at TEXT NOT NULL,
            status_reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE TABLE lists (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE memberships (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
            list_id INTEGER NOT NULL REFERENCES lists (id),
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
            changed_at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (list_id, subscriber_id)
        ) WITHOUT ROWID;
        CREATE INDEX memberships_by_subscriber ON memberships (subscriber_id);
    """),
    Migration(2, "active_recipients view for the send ledger", """
        CREATE VIEW active_recipients (subscriber_id, email, name, list_name) AS
            SELECT s.id, s.email, s.name, l.name
            FROM memberships m
            JOIN subscribers s ON s.id = m.subscriber_id
            JOIN lists l ON l.id = m.list_id
            WHERE s.status = 'active' AND m.status = 'active';
    """),
    Migration(3, "the send ledger: sends and per-recipient deliveries", """
        CREATE TABLE sends (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            issue TEXT NOT NULL UNIQUE,           -- the issue's slug: one send per issue
            lists TEXT NOT NULL,                  -- JSON list of the lists frozen into it
            content_hash TEXT NOT NULL,           -- the composed email when the send started
            state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'incomplete',
                                                 'paused', 'interrupted', 'failed')),
            created_at REAL NOT NULL,             -- Unix times, UTC
            started_at REAL,
            finished_at REAL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            send_id INTEGER NOT NULL REFERENCES sends (id),
            subscriber_id INTEGER NOT NULL,
            email TEXT NOT NULL,                  -- as frozen when the send started
            list_name TEXT NOT NULL,              -- the list the message is sent for
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent',
                                       'deferred', 'failed', 'unknown', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            first_failure_at REAL,
            reply TEXT NOT NULL DEFAULT '',       -- the server's last answer
            updated_at REAL,
            suppress INTEGER NOT NULL DEFAULT 0,  -- hard bounce still to copy to the store
            UNIQUE (send_id, subscriber_id)
        );
        CREATE INDEX deliveries_by_state ON deliveries (send_id, state);  -- rowid order within
        DROP VIEW active_recipients;
        CREATE VIEW active_recipients (subscriber_id, email, name, list_name, fields) AS
            SELECT s.id, s.email, s.name, l.name, s.fields
            FROM memberships m
            JOIN subscribers s ON s.id = m.subscriber_id
            JOIN lists l ON l.id = m.list_id
            WHERE s.status = 'active' AND m.status = 'active';
    """),
    Migration(4, "approvals of composed issues", """
        CREATE TABLE approvals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            issue TEXT NOT NULL,                  -- the issue's slug
            content_hash TEXT NOT NULL,           -- the composed email that was approved
            approved_by TEXT NOT NULL,
            approved_at TEXT NOT NULL
        );
        CREATE INDEX approvals_by_issue ON approvals (issue, id);
    """),
    Migration(5, "bounces and complaints: Message-IDs, delivery events, webhook nonces", """
        ALTER TABLE deliveries ADD COLUMN message_id TEXT;  -- as handed over, with <>
        CREATE INDEX deliveries_by_message_id ON deliveries (message_id)
            WHERE message_id IS NOT NULL;
        CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id, send_id);
        CREATE TABLE delivery_events (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE,       -- the same report twice is one event
            delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
            send_id INTEGER NOT NULL,
            subscriber_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'blocked', 'complaint')),
            source TEXT NOT NULL,                 -- pipe, imap, postmark, sendgrid, mailgun
            status TEXT NOT NULL DEFAULT '',      -- the enhanced status code, e.g. 5.1.1
            diagnostic TEXT NOT NULL DEFAULT '',  -- what the remote server said, cut short
            recipient TEXT NOT NULL DEFAULT '',   -- the address the report names
            occurred_at REAL,                     -- when the report says it happened
            recorded_at REAL NOT NULL
        );
        CREATE INDEX delivery_events_by_send ON delivery_events (send_id, kind);
        CREATE INDEX delivery_events_by_subscriber ON delivery_events (subscriber_id, send_id);
        CREATE TABLE webhook_nonces (             -- signed webhook requests already seen
            provider TEXT NOT NULL,
            nonce TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (provider, nonce)
        ) WITHOUT ROWID;
        CREATE INDEX webhook_nonces_by_time ON webhook_nonces (seen_at);
    """),
    Migration(6, "the transport each send goes through", """
        ALTER TABLE sends ADD COLUMN transport TEXT;  -- its URL without secrets; NULL before
    """),
    Migration(7, "the versions of the composed issue a send has gone out with", """
        CREATE TABLE send_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            send_id INTEGER NOT NULL REFERENCES sends (id),
            content_hash TEXT NOT NULL,           -- the composed email from this run on
            issue_date TEXT,                      -- the issue's date: tells another issue
            source TEXT,                          -- that reuses the slug; NULL before v7
            since REAL NOT NULL                   -- the first run with this version
        );
        CREATE INDEX send_versions_by_send ON send_versions (send_id, id);
        INSERT INTO send_versions (send_id, content_hash, since)
            SELECT id, content_hash, coalesce(started_at, created_at) FROM sends;
    """),
    Migration(8, "pending subscribers, consent records, erased addresses, sign-up mails", """
        -- SQLite cannot change a CHECK constraint: the table is rebuilt, ids and their
        -- AUTOINCREMENT counter kept; memberships point at it again once it is renamed.
        DROP VIEW active_recipients;
        CREATE TABLE subscribers_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            fields TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN
                ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
            status_changed_at TEXT NOT NULL,
            status_reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        INSERT INTO subscribers_new (id, email, key, name, fields, status, status_changed_at,
                                     status_reason, created_at)
            SELECT id, email, key, name, fields, status, status_changed_at, status_reason,
                   created_at FROM subscribers;
        DELETE FROM sqlite_sequence WHERE name = 'subscribers_new';
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'subscribers_new', seq FROM sqlite_sequence WHERE name = 'subscribers';
        DROP TABLE subscribers;
        ALTER TABLE subscribers_new RENAME TO subscribers;
        CREATE INDEX subscribers_pending ON subscribers (status_changed_at)
            WHERE status = 'pending';
        CREATE VIEW active_recipients (subscriber_id, email, name, list_name, fields) AS
            SELECT s.id, s.email, s.name, l.name, s.fields
            FROM memberships m
            JOIN subscribers s ON s.id = m.subscriber_id
            JOIN lists l ON l.id = m.list_id
            WHERE s.status = 'active' AND m.status = 'active';
        CREATE TABLE consent_texts (
            hash TEXT PRIMARY KEY,                -- SHA-256 of the text, hex
            text TEXT NOT NULL,                   -- the wording, as the person saw it
            first_used_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE consents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
            lists TEXT NOT NULL,                  -- JSON list of the lists agreed to
            source TEXT NOT NULL,                 -- the form's URL, the file, the command
            text_hash TEXT REFERENCES consent_texts (hash),  -- NULL: wording not known
            given_at TEXT NOT NULL,
            confirmed_at TEXT,                    -- double opt-in: the button was pressed
            client_ip TEXT                        -- only with [signup] record_client_ip
        );
        CREATE INDEX consents_by_subscriber ON consents (subscriber_id);
        CREATE TABLE erased (
            hash TEXT PRIMARY KEY,                -- keyed hash of the address key (HMAC)
            erased_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE signup_mails (
            hash TEXT PRIMARY KEY,                -- keyed hash of the address key (HMAC)
            sent_at REAL NOT NULL                 -- the last confirmation mail, Unix time
        ) WITHOUT ROWID;
    """, rebuilds=True),
    Migration(9, "the edition (language) each recipient of a send gets", """
        ALTER TABLE deliveries ADD COLUMN edition TEXT;  -- `fr`; NULL until first claimed
    """),
    Migration(10, "the runs of each send, for the rate while sending", """
        CREATE TABLE send_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            send_id INTEGER NOT NULL REFERENCES sends (id),
            started_at REAL NOT NULL,             -- Unix times, as the deliveries' updated_at
            finished_at REAL                      -- NULL: still running, or it died
        );
        CREATE INDEX send_runs_by_send ON send_runs (send_id, id);
        INSERT INTO send_runs (send_id, started_at, finished_at)
            SELECT id, started_at, finished_at FROM sends WHERE started_at IS NOT NULL;
    """),
]


def utc_now() -> str:
    """ISO 8601 UTC to the second: the *_at columns of subscribers, lists, memberships,
    approvals and migrations (the ledger's sends and deliveries keep Unix times)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_database(path: Path, *, threads: bool = False,
                  busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open (creating it mode 0600) the database at `path` and apply pending migrations.

    With `threads`, the connection may be used from several threads; the caller then
    serialises every use with a lock of its own (the send ledger does). `busy_timeout` is
    how long a write waits for another process's transaction before it fails.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the database: {exc.strerror}") from None
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                               check_same_thread=not threads)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database: {exc}") from None
    try:
        migrate(conn, MIGRATIONS, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to this database (0 for a new file)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: list[Migration], where: str = "") -> None:
    """Apply the migrations newer than the database, each in its own transaction."""
    where = where or "database"
    current = schema_version(conn)
    known = max((m.version for m in migrations), default=0)
    if current > known:
        raise StoreError(f"{where}: schema version {current} is newer than this program knows "
                         f"({known}); upgrade newsletter")
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version not in applied:  # one that landed below a newer one, too
            _apply(conn, migration, where)


def _apply(conn: sqlite3.Connection, migration: Migration, where: str) -> None:
    # The record goes in first: if another process applied this migration meanwhile, its
    # primary key fails before any schema change, and we roll back and move on.
    record = (f"INSERT INTO schema_migrations (version, description, applied_at) VALUES "
              f"({int(migration.version)}, {_literal(migration.description)}, "
              f"{_literal(utc_now())});")
    if migration.rebuilds:  # a no-op inside a transaction, so before it
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{record}\n{migration.sql}\n;")
        if migration.rebuilds and conn.execute("PRAGMA foreign_key_check").fetchone():
            raise sqlite3.IntegrityError("a row points at a row that is gone")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                        (migration.version,)).fetchone():
            return
        raise StoreError(f"{where}: migration {migration.version} ({migration.description}) "
                         f"failed and was rolled back: {exc}") from None
    finally:
        if migration.rebuilds:
            conn.execute("PRAGMA foreign_keys = ON")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
