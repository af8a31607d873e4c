"""The subscriber store on a real SQLite file: statuses, lists, streaming, migrations."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.audience.store import SubscriberStore, address_key
from newsletter.database import MIGRATIONS, Migration, migrate, open_database, schema_version
from newsletter.errors import StoreError


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SubscriberStore(tmp_path / "newsletter.db") as opened:
        yield opened


def emails(store: SubscriberStore, *lists: str, only_active: bool = True) -> list[str]:
    return [s.email for s in store.stream(lists, only_active=only_active)]


def test_new_database_is_private_to_its_owner_and_fully_migrated(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    with SubscriberStore(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(conn) == MIGRATIONS[-1].version


def test_migrations_are_numbered_in_order_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_a_migration_numbered_below_the_newest_applied_is_still_applied(
        tmp_path: Path) -> None:
    # Two pieces of work that each add a migration may land in either order: a database
    # that has 9 still gets 8 when it arrives.
    path = tmp_path / "newsletter.db"
    newest = MIGRATIONS[-1].version
    skipped = Migration(newest + 1, "subscriber notes",
                        "ALTER TABLE subscribers ADD COLUMN notes TEXT NOT NULL DEFAULT '';")
    after = Migration(newest + 2, "list notes",
                      "ALTER TABLE lists ADD COLUMN notes TEXT NOT NULL DEFAULT '';")
    conn = open_database(path)
    migrate(conn, [*MIGRATIONS, after])
    migrate(conn, [*MIGRATIONS, skipped, after])
    assert "notes" in [row[1] for row in conn.execute("PRAGMA table_info(subscribers)")]
    assert schema_version(conn) == after.version
    migrate(conn, [*MIGRATIONS, skipped, after])  # and only once


def test_address_is_kept_as_written_and_found_in_any_case(store: SubscriberStore) -> None:
    assert store.add("Ana.Lopez@Example.ORG", "members", "Ana Lopez") == "added"
    found = store.get("ana.lopez@example.org")
    assert found is not None and found.email == "Ana.Lopez@Example.ORG"
    assert found.name == "Ana Lopez" and found.status == "active"
    assert store.add("ANA.LOPEZ@example.org", "members") == "unchanged"
    assert store.get_by_id(found.id) == found


def test_add_updates_name_and_fields_without_erasing_others(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members", "Ana", {"city": "Lyon", "language": "fr"})
    assert store.add("ana@example.org", "members", "", {"city": "Paris"}) == "updated"
    found = store.get("ana@example.org")
    assert found is not None and found.name == "Ana"
    assert found.fields == {"city": "Paris", "language": "fr"}


def test_invalid_address_is_refused_with_the_reason(store: SubscriberStore) -> None:
    with pytest.raises(StoreError, match="not a valid address.*@-sign"):
        store.add("ana.example.org", "members")
    with pytest.raises(StoreError, match="not a list name"):
        store.add("ana@example.org", "Members List")


def test_unsubscribing_from_one_list_keeps_the_others(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members")
    store.add("ana@example.org", "partners")
    store.unsubscribe("ANA@example.org", "partners", reason="one-click")
    assert emails(store, "members") == ["ana@example.org"]
    assert emails(store, "partners") == []
    assert store.get("ana@example.org").status == "active"  # type: ignore[union-attr]
    assert store.add("ana@example.org", "partners") == "suppressed"
    assert store.add("ana@example.org", "partners", resubscribe=True) == "added"
    assert emails(store, "partners") == ["ana@example.org"]


def test_unsubscribing_everywhere_suppresses_every_list(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members")
    store.add("ana@example.org", "partners")
    changed = store.unsubscribe("ana@example.org", reason="replied STOP")
    assert changed.status == "unsubscribed" and changed.status_reason == "replied STOP"
    assert emails(store, "members", "partners") == []
    assert store.add("ana@example.org", "reviewers") == "suppressed"
    assert emails(store, "members", only_active=False) == ["ana@example.org"]


def test_unsubscribing_an_unknown_address_keeps_it_out_later(store: SubscriberStore) -> None:
    store.unsubscribe("bob@example.org", reason="asked at a conference")
    assert store.add("Bob@Example.org", "members") == "suppressed"
    with pytest.raises(StoreError, match="not on the list partners"):
        store.unsubscribe("carol@example.org", "partners")


def test_a_bounce_needs_its_own_flag_to_be_undone(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members")
    store.mark_bounced("ana@example.org", "550 no such user")
    assert store.count_active(["members"]) == 0
    assert store.add("ana@example.org", "members", resubscribe=True) == "suppressed"
    assert store.add("ana@example.org", "members", resubscribe_bounced=True) == "added"
    again = store.get("ana@example.org")
    assert again is not None and again.status == "active"


def test_complaint_suppresses_until_resubscribed(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members")
    assert store.mark_complained("ana@example.org", "marked as spam").status == "complained"
    assert emails(store, "members") == []
    assert store.add("ana@example.org", "members", resubscribe=True) == "added"


def test_unsubscribing_twice_keeps_the_first_date_and_reason(store: SubscriberStore) -> None:
    store.add("ana@example.org", "members")
    store.unsubscribe("ana@example.org", "members", reason="one-click")
    store.unsubscribe("ana@example.org", "members", reason="again")
    first = store.unsubscribe("ana@example.org", reason="first")
    again = store.unsubscribe("ana@example.org", reason="second")
    assert (again.status_changed_at, again.status_reason) == (first.status_changed_at, "first")
    [membership] = store.memberships(again.id)
    assert (membership.status, membership.reason) == ("unsubscribed", "one-click")


def test_stream_gives_each_subscriber_once_in_id_order(store: SubscriberStore) -> None:
    for address in ("c@example.org", "a@example.org", "b@example.org"):
        store.add(address, "members")
    store.add("a@example.org", "partners")
    store.add("d@example.org", "partners")
    assert emails(store, "members", "partners") == ["c@example.org", "a@example.org",
                                                    "b@example.org", "d@example.org"]
    assert store.count_active(["members", "partners"]) == 4
    many = [s.id for s in store.stream(["members", "partners"], batch_size=1)]
    assert many == sorted(many)


def test_unknown_list_is_an_error_naming_the_lists(store: SubscriberStore) -> None:
    store.add("a@example.org", "members")
    with pytest.raises(StoreError, match="no list named memebers; lists: members"):
        list(store.stream(["memebers"]))


def test_remove_takes_off_one_list_without_suppressing(store: SubscriberStore) -> None:
    store.add("a@example.org", "members")
    assert store.remove("A@example.org", "members") is True
    assert store.remove("a@example.org", "members") is False
    assert store.add("a@example.org", "members") == "added"


def test_lists_count_members_by_status(store: SubscriberStore) -> None:
    for address in ("a@example.org", "b@example.org", "c@example.org", "d@example.org"):
        store.add(address, "members")
    store.add("a@example.org", "partners")
    store.unsubscribe("b@example.org", "members")
    store.mark_bounced("c@example.org", "550")
    store.mark_complained("d@example.org", "spam")
    counts = {c.name: c for c in store.lists()}
    members = counts["members"]
    assert (members.active, members.unsubscribed, members.bounced, members.complained,
            members.total) == (1, 1, 1, 1, 4)
    assert (counts["partners"].active, counts["partners"].total) == (1, 1)


def test_active_recipients_view_has_one_row_per_active_membership(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    with SubscriberStore(path) as store:
        store.add("a@example.org", "members", "Ana")
        store.add("a@example.org", "partners")
        store.add("b@example.org", "members")
        store.unsubscribe("a@example.org", "partners")
        store.mark_bounced("b@example.org", "550")
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT subscriber_id, email, name, list_name FROM active_recipients"
                        ).fetchall()
    assert rows == [(1, "a@example.org", "Ana", "members")]


def test_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    with SubscriberStore(path) as store:
        store.add("a@example.org", "members")
        store.add("b@example.org", "members")
    conn = open_database(path)  # as a later clean-up tool might
    conn.execute("DELETE FROM memberships WHERE subscriber_id = 2")
    conn.execute("DELETE FROM consents WHERE subscriber_id = 2")
    conn.execute("DELETE FROM subscribers WHERE id = 2")
    conn.close()
    with SubscriberStore(path) as store:
        store.add("c@example.org", "members")
        assert store.get("c@example.org").id == 3  # type: ignore[union-attr]


def test_migrating_an_older_database_keeps_its_subscribers(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, MIGRATIONS[:1])
    old.execute("INSERT INTO subscribers (email, key, name, fields, status_changed_at, "
                "created_at) VALUES ('Ana@Example.org', 'ana@example.org', 'Ana', "
                "'{\"city\":\"Lyon\"}', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')")
    old.execute("INSERT INTO lists (name, created_at) VALUES ('members', '2020-01-01T00:00:00Z')")
    old.execute("INSERT INTO memberships (subscriber_id, list_id, changed_at) "
                "VALUES (1, 1, '2020-01-01T00:00:00Z')")
    old.close()
    with SubscriberStore(path) as store:
        [ana] = store.stream(["members"])
        assert (ana.email, ana.name, ana.fields) == ("Ana@Example.org", "Ana", {"city": "Lyon"})
        assert ana.status_changed_at.year == 2020
    conn = sqlite3.connect(path)
    assert schema_version(conn) == MIGRATIONS[-1].version
    assert conn.execute("SELECT count(*) FROM active_recipients").fetchone()[0] == 1


def test_the_pending_status_migration_rebuilds_the_table_keeping_ids_and_lists(
        tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA foreign_keys = ON")
    migrate(old, [m for m in MIGRATIONS if m.version < 8])
    for n in (1, 2, 3):
        old.execute("INSERT INTO subscribers (email, key, status_changed_at, created_at) "
                    f"VALUES ('r{n}@example.org', 'r{n}@example.org', '2020-01-01', 't')")
    old.execute("INSERT INTO lists (name, created_at) VALUES ('members', 't')")
    old.execute("INSERT INTO memberships (subscriber_id, list_id, changed_at) VALUES (2, 1, 't')")
    old.execute("DELETE FROM subscribers WHERE id = 3")
    # the bounce history of migration 5 points at subscriber ids: it must still name r2
    old.execute("INSERT INTO sends (issue, lists, content_hash, state, created_at, transport) "
                "VALUES ('2020-01', '[\"members\"]', 'h', 'complete', 0, 'smtp://x')")
    old.execute("INSERT INTO deliveries (send_id, subscriber_id, email, list_name, state, "
                "message_id) VALUES (1, 2, 'r2@example.org', 'members', 'sent', '<m@x>')")
    old.execute("INSERT INTO delivery_events (event_key, delivery_id, send_id, subscriber_id, "
                "kind, source, recorded_at) VALUES ('k', 1, 1, 2, 'soft', 'pipe', 0)")
    old.close()
    with SubscriberStore(path) as store:
        assert [s.email for s in store.stream(["members"])] == ["r2@example.org"]
        store.add("new@example.org", "members")
        assert store.get("new@example.org").id == 4  # type: ignore[union-attr]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT s.email, d.message_id, e.kind FROM delivery_events e "
                        "JOIN deliveries d ON d.id = e.delivery_id "
                        "JOIN subscribers s ON s.id = e.subscriber_id").fetchall() == [
        ("r2@example.org", "<m@x>", "soft")]
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("INSERT INTO subscribers (email, key, status, status_changed_at, created_at) "
                 "VALUES ('p@example.org', 'p@example.org', 'pending', 't', 't')")
    with pytest.raises(sqlite3.IntegrityError):  # memberships still point at subscribers
        conn.execute("INSERT INTO memberships (subscriber_id, list_id, changed_at) "
                     "VALUES (99, 1, 't')")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_later_migration_changes_the_schema_and_keeps_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    with SubscriberStore(path) as store:
        store.add("ana@example.org", "members", "Ana")
    later = Migration(MIGRATIONS[-1].version + 1, "subscriber notes",
                      "ALTER TABLE subscribers ADD COLUMN notes TEXT NOT NULL DEFAULT '';"
                      "UPDATE subscribers SET notes = 'from the 2019 list';")
    conn = open_database(path)
    migrate(conn, [*MIGRATIONS, later])
    assert conn.execute("SELECT email, name, notes FROM subscribers").fetchall() == [
        ("ana@example.org", "Ana", "from the 2019 list")]
    assert schema_version(conn) == later.version


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    with SubscriberStore(path) as store:
        store.add("ana@example.org", "members")
    broken = Migration(MIGRATIONS[-1].version + 1, "broken",
                       "ALTER TABLE subscribers ADD COLUMN notes TEXT;"
                       "UPDATE no_such_table SET x = 1;")
    conn = open_database(path)
    with pytest.raises(StoreError, match="migration .* failed and was rolled back"):
        migrate(conn, [*MIGRATIONS, broken])
    columns = [row[1] for row in conn.execute("PRAGMA table_info(subscribers)")]
    assert "notes" not in columns
    assert schema_version(conn) == MIGRATIONS[-1].version


def test_a_database_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    conn = open_database(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', '2099-01-01T00:00:00Z')")
    conn.close()
    with pytest.raises(StoreError, match="schema version 999 is newer"):
        SubscriberStore(path)


def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    path.write_text("email,name\n" * 200)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        SubscriberStore(path)


@pytest.mark.parametrize("address", [
    "Ana.Lopez@Example.ORG", "a+tag@example.org", "postmaster@Example.org", "a..b@example.org",
    ".a@example.org", "a.@example.org", "a@localhost", "a@example", "a@x.test",
    "a@-example.org", "a@example-.org", "a@1.2.3.4", "a@example.123", "a@xn--bcher-kva.de",
    "a@bücher.de", "jörg@example.org", "a@@example.org", "a@exam_ple.org",
    "a@" + "x" * 64 + ".org", "a" * 65 + "@example.org", "=cmd@example.org", "a@example.org.",
])
def test_address_key_agrees_with_email_validator(address: str) -> None:
    try:
        expected: str | None = validate_email(address, check_deliverability=False
                                              ).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = address_key(address)
    except EmailNotValidError:
        got = None
    assert got == expected
