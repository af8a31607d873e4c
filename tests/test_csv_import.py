"""CSV import and export of subscribers, on real files and a real SQLite database."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from newsletter.audience.csvio import escape, export_csv, import_csv, unescape
from newsletter.audience.store import SubscriberStore
from newsletter.errors import StoreError

MAILCHIMP = (
    "Email Address,First Name,Last Name,Organisation,City,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
    "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,"
    "LAST_CHANGED,LEID,EUID,NOTES\n"
    "ana@example.org,Ana,Lopez,Efus,Lyon,2,2019-03-01 10:00:00,,2019-03-01 10:01:00,"
    "1.2.3.4,,,,,Europe/Paris,FR,,2020-01-01 00:00:00,123,abc,\n"
    "ben@example.org,Ben,,,Liège,4,,,,,,,,,,BE,,,124,abd,met in Liège\n"
)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SubscriberStore(tmp_path / "newsletter.db") as opened:
        yield opened


def write(tmp_path: Path, text: str, name: str = "members.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def counts(summary) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return (summary.added, summary.updated, summary.unchanged, summary.skipped_invalid,
            summary.skipped_duplicate, summary.skipped_suppressed)


def dump(path: Path) -> list[tuple]:  # type: ignore[type-arg]
    conn = sqlite3.connect(path)
    return (conn.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
            + conn.execute("SELECT * FROM memberships ORDER BY subscriber_id").fetchall())


def test_mailchimp_export_with_bom_keeps_names_and_useful_fields(store, tmp_path) -> None:
    summary = import_csv(store, write(tmp_path, MAILCHIMP, bom=True), "members")
    assert counts(summary) == (2, 0, 0, 0, 0, 0) and summary.problems == []
    ana, ben = store.stream(["members"])
    assert (ana.email, ana.name) == ("ana@example.org", "Ana Lopez")
    assert ana.fields == {"organisation": "Efus", "city": "Lyon", "timezone": "Europe/Paris"}
    assert (ben.name, ben.fields) == ("Ben", {"city": "Liège", "notes": "met in Liège"})


def test_semicolons_and_other_header_spellings(store, tmp_path) -> None:
    text = "E-Mail;Name;Preferred Language\nana@example.org;Ana Lopez;es\n"
    summary = import_csv(store, write(tmp_path, text, bom=True), "partners")
    assert summary.added == 1
    [ana] = store.stream(["partners"])
    assert (ana.name, ana.fields) == ("Ana Lopez", {"preferred_language": "es"})


def test_invalid_rows_are_reported_by_row_and_the_others_imported(store, tmp_path) -> None:
    text = ("email,name\n"
            "ana@example.org,Ana\n"
            "ben.example.org,Ben\n"
            ",Nobody\n"
            '"carol@example.org",Carol\n'
            "dan@exa mple.org,Dan\n"
            ",\n"
            "eve@example.org,Eve\n")
    summary = import_csv(store, write(tmp_path, text), "members")
    assert counts(summary) == (3, 0, 0, 3, 0, 0)
    assert [row for row, _ in summary.problems] == [3, 4, 6]
    assert "'ben.example.org' is not a valid address" in summary.problems[0][1]
    assert summary.problems[1][1] == "no email address"
    assert [s.email for s in store.stream(["members"])] == [
        "ana@example.org", "carol@example.org", "eve@example.org"]


def test_mixed_case_duplicates_keep_the_first_row(store, tmp_path) -> None:
    text = ("email,name\n"
            "Ana@Example.org,Ana\n"
            "ben@example.org,Ben\n"
            "ana@EXAMPLE.ORG,Ana Again\n"
            "ANA@example.org,Ana Thrice\n")
    summary = import_csv(store, write(tmp_path, text), "members")
    assert counts(summary) == (2, 0, 0, 0, 2, 0)
    assert summary.problems == [(4, "same address as row 2, skipped"),
                                (5, "same address as row 2, skipped")]
    ana = store.get("ana@example.org")
    assert ana is not None and (ana.email, ana.name) == ("Ana@Example.org", "Ana")


def test_addresses_already_stored_match_in_any_case(store, tmp_path) -> None:
    store.add("Ana@Example.org", "members", "Ana")
    summary = import_csv(store, write(tmp_path, "email,name\nana@example.ORG,Ana\n"), "members")
    assert counts(summary) == (0, 0, 1, 0, 0, 0)
    assert store.count_active(["members"]) == 1


def test_importing_the_same_file_again_changes_nothing(store, tmp_path) -> None:
    path = write(tmp_path, MAILCHIMP + "bad-address,x,y\n", bom=True)
    first = import_csv(store, path, "members")
    before = dump(store.path)
    second = import_csv(store, path, "members")
    assert counts(first) == (2, 0, 0, 1, 0, 0)
    assert counts(second) == (0, 0, 2, 1, 0, 0)
    assert dump(store.path) == before


def test_changed_names_and_fields_are_updated_and_empty_cells_erase_nothing(store, tmp_path):
    import_csv(store, write(tmp_path, "email,name,city\nana@example.org,Ana,Lyon\n"), "members")
    summary = import_csv(store, write(tmp_path, "email,name,city\nana@example.org,,Paris\n"),
                         "members")
    assert counts(summary) == (0, 1, 0, 0, 0, 0)
    ana = store.get("ana@example.org")
    assert ana is not None and (ana.name, ana.fields) == ("Ana", {"city": "Paris"})


def test_a_known_subscriber_imported_into_another_list_is_added_to_it(store, tmp_path) -> None:
    store.add("ana@example.org", "members")
    summary = import_csv(store, write(tmp_path, "email\nana@example.org\n"), "partners")
    assert summary.added == 1
    assert [m.list_name for m in store.memberships(store.get("ana@example.org").id)] == [
        "members", "partners"]


def test_suppression_survives_reimport(store, tmp_path) -> None:
    text = ("email\nana@example.org\nben@example.org\ncarol@example.org\n"
            "dan@example.org\neve@example.org\n")
    path = write(tmp_path, text)
    import_csv(store, path, "members")
    store.unsubscribe("ana@example.org", reason="footer link")
    store.unsubscribe("ben@example.org", "members", reason="one-click")
    store.mark_bounced("carol@example.org", "550 5.1.1 user unknown")
    store.mark_complained("dan@example.org", "feedback loop")

    again = import_csv(store, path, "members")
    assert counts(again) == (0, 0, 1, 0, 0, 4)
    assert [s.email for s in store.stream(["members"])] == ["eve@example.org"]

    resubscribed = import_csv(store, path, "members", resubscribe=True)
    assert counts(resubscribed) == (3, 0, 1, 0, 0, 1)
    assert store.get("carol@example.org").status == "bounced"  # type: ignore[union-attr]

    bounced_too = import_csv(store, path, "members", resubscribe_bounced=True)
    assert counts(bounced_too) == (1, 0, 4, 0, 0, 0)
    assert store.count_active(["members"]) == 5


def test_dry_run_counts_but_writes_nothing(store, tmp_path) -> None:
    summary = import_csv(store, write(tmp_path, MAILCHIMP), "members", dry_run=True)
    assert summary.added == 2
    assert store.get("ana@example.org") is None and store.lists() == []


def test_file_without_an_email_column_is_refused(store, tmp_path) -> None:
    with pytest.raises(StoreError, match=r"members.csv: no email column.*found: Name, City"):
        import_csv(store, write(tmp_path, "Name,City\nAna,Lyon\n"), "members")


def test_file_that_is_not_utf8_imports_nothing(store, tmp_path) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes("email,name\nana@example.org,Ana\nben@example.org,Müller\n"
                     .encode("latin-1"))
    with pytest.raises(StoreError, match="not UTF-8 text.*CSV UTF-8"):
        import_csv(store, path, "members")
    assert store.get("ana@example.org") is None


@pytest.mark.parametrize("cell", ["=1+1", "+33 1 23", "-5", "@SUM(A1)", "\tx", "\rx", "'=x",
                                  "'quoted'", "plain", ""])
def test_escaping_is_undone_by_unescape(cell: str) -> None:
    escaped = escape(cell)
    assert escaped[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert unescape(escaped) == cell


def test_export_defuses_formulas(store, tmp_path) -> None:
    store.add("=danger@example.org", "members", "@Ana",
              {"city": "=HYPERLINK(\"http://evil\")", "phone": "+33 1 23", "team": "-ops"})
    out = io.StringIO()
    assert export_csv(store, "members", out) == 1
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert header == ["email", "name", "city", "phone", "team"]
    assert row == ["'=danger@example.org", "'@Ana", "'=HYPERLINK(\"http://evil\")",
                   "'+33 1 23", "'-ops"]


def test_export_round_trips_through_import(store, tmp_path) -> None:
    import_csv(store, write(tmp_path, MAILCHIMP, bom=True), "members")
    store.add("=x@example.org", "members", "Zoë, \"Z\"",
              {"city": "@home, \"and\" away", "org": "'a"})
    store.add("gone@example.org", "members")
    store.unsubscribe("gone@example.org")
    exported = tmp_path / "export.csv"
    with open(exported, "w", newline="", encoding="utf-8-sig") as file:
        assert export_csv(store, "members", file) == 3

    with SubscriberStore(tmp_path / "copy.db") as copy:
        summary = import_csv(copy, exported, "members")
        assert counts(summary) == (3, 0, 0, 0, 0, 0)
        original = [(s.email, s.name, s.fields) for s in store.stream(["members"])]
        assert [(s.email, s.name, s.fields) for s in copy.stream(["members"])] == original
    assert counts(import_csv(store, exported, "members")) == (0, 0, 3, 0, 0, 0)
