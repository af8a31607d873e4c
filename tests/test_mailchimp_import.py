"""Moving from Mailchimp: its three audience exports, as Mailchimp writes them, keep who left.

The files are written the way Mailchimp's "Export audience" zip holds them: UTF-8 with a
BOM, CRLF line ends, and quoted cells that span lines (an address, a note).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import run_cli

from newsletter.audience import consent
from newsletter.audience.csvio import import_csv
from newsletter.audience.store import SubscriberStore

COMMON = ('"Email Address","First Name","Last Name",Address,"Phone Number",MEMBER_RATING,'
          "OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,"
          "TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES")
SUBSCRIBED = [
    COMMON + ",TAGS",
    'ana@example.org,Ana,Lopez,"10 rue des Montiboeufs\nParis",,2,"2019-03-01 10:00:00",,'
    '"2019-03-01 10:01:00",192.0.2.1,,,,,Europe/Paris,FR,,"2020-01-01 00:00:00",11,a1,'
    '"met at the GA\nin Riga",',
    'ben@example.org,Ben,Martin,,,3,"2019-05-02 08:00:00",,"2019-05-02 08:03:00",,,,,,,BE,,,'
    '12,b2,,"""Members"""',
]
UNSUBSCRIBED = [
    COMMON + ",UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,"
    "UNSUB_REASON_OTHER,TAGS",
    'cleo@example.org,Cleo,Durand,"1 Main St\nGenk",,2,"2018-01-01 09:00:00",,,,,,,,,BE,,,'
    '13,c3,,"2020-01-16 07:30:00","January 2020",abc123,"I no longer want to receive '
    'these emails","Too many\nemails",',
    'dan@example.org,Dan,,,,1,,,,,,,,,,,,,14,d4,,"2019-11-02 12:00:00",,,,,',
]
CLEANED = [
    COMMON + ",CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,TAGS",
    'eve@example.org,Eve,,,,1,,,,,,,,,,,,,15,e5,"bounced\ntwice","2019-12-12 18:00:00",'
    '"December 2019",def456,',
]


def export(tmp_path: Path, name: str, rows: list[str]) -> Path:
    """A file as Mailchimp writes it: BOM, CRLF between records (cells keep their LF)."""
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return path


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SubscriberStore(tmp_path / "newsletter.db") as opened:
        yield opened


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_the_three_mailchimp_exports_give_active_unsubscribed_and_bounced(store,
                                                                          tmp_path) -> None:
    subscribed = import_csv(store, export(tmp_path, "subscribed.csv", SUBSCRIBED), "members")
    unsubscribed = import_csv(store, export(tmp_path, "unsubscribed.csv", UNSUBSCRIBED),
                              "members")
    cleaned = import_csv(store, export(tmp_path, "cleaned.csv", CLEANED), "members")
    assert (subscribed.added, subscribed.problems) == (2, [])
    assert (unsubscribed.unsubscribed, unsubscribed.added, unsubscribed.problems) == (2, 0, [])
    assert (cleaned.bounced, cleaned.added, cleaned.problems) == (1, 0, [])
    assert "2 unsubscribed, 0 bounced, 0 complained" in str(unsubscribed)

    assert [s.email for s in store.stream(["members"])] == ["ana@example.org",
                                                            "ben@example.org"]
    ana = store.get("ana@example.org")
    assert ana is not None and ana.name == "Ana Lopez"
    assert ana.fields["address"] == "10 rue des Montiboeufs\nParis"  # a cell over two lines
    assert ana.fields["notes"] == "met at the GA\nin Riga"
    assert "unsub_time" not in ana.fields and "optin_time" not in ana.fields

    cleo = store.get("cleo@example.org")
    assert cleo is not None and cleo.status == "unsubscribed"
    assert cleo.status_changed_at == at("2020-01-16T07:30:00")
    assert cleo.status_reason == ("unsubscribed in Mailchimp; I no longer want to receive "
                                  "these emails; Too many\nemails; campaign: January 2020")
    assert (cleo.name, cleo.fields) == ("", {})  # of someone who left, only the address
    assert [m.status for m in store.memberships(cleo.id)] == ["unsubscribed"]
    dan = store.get("dan@example.org")
    assert dan is not None and dan.status_reason == "unsubscribed in Mailchimp"
    eve = store.get("eve@example.org")
    assert eve is not None and eve.status == "bounced"
    assert eve.status_changed_at == at("2019-12-12T18:00:00")
    assert eve.status_reason == ("bounced in Mailchimp; cleaned (hard bounce); "
                                 "campaign: December 2019")
    [members] = store.lists()
    assert (members.active, members.unsubscribed, members.bounced) == (2, 2, 1)


def test_optin_and_confirm_times_become_consent_records_from_mailchimp(store,
                                                                      tmp_path) -> None:
    import_csv(store, export(tmp_path, "subscribed.csv", SUBSCRIBED), "members")
    ana, ben = (store.get(a) for a in ("ana@example.org", "ben@example.org"))
    [record] = consent.of_subscriber(store.connection, ana.id)  # type: ignore[union-attr]
    assert record.as_json() == {
        "lists": ["members"], "source": "imported from Mailchimp (subscribed.csv)",
        "wording": None, "wording_sha256": None, "given_at": "2019-03-01T10:00:00Z",
        "confirmed_at": "2019-03-01T10:01:00Z", "client_ip": None}
    assert [c.given_at for c in consent.of_subscriber(store.connection, ben.id)] == [  # type: ignore[union-attr]
        "2019-05-02T08:00:00Z"]
    import_csv(store, export(tmp_path, "subscribed.csv", SUBSCRIBED), "members")
    assert len(consent.of_subscriber(store.connection, ana.id)) == 1  # type: ignore[union-attr]
    plain = tmp_path / "partners.csv"
    plain.write_text("email\nana@example.org\n", encoding="utf-8")
    import_csv(store, plain, "partners")
    second = consent.of_subscriber(store.connection, ana.id)[1]  # type: ignore[union-attr]
    assert (second.lists, second.source, second.confirmed_at) == (
        ["partners"], "imported from partners.csv", None)


def test_reimporting_the_subscribed_file_never_reactivates_anyone(store, tmp_path) -> None:
    # An old subscribed export that still holds Cleo and Eve, imported after the others.
    old = SUBSCRIBED + [UNSUBSCRIBED[1].split(',"2020-01-16')[0] + ",",
                        "eve@example.org,Eve,,,,1,,,,,,,,,,,,,15,e5,,"]
    import_csv(store, export(tmp_path, "unsubscribed.csv", UNSUBSCRIBED), "members")
    import_csv(store, export(tmp_path, "cleaned.csv", CLEANED), "members")
    first = import_csv(store, export(tmp_path, "old-subscribed.csv", old), "members")
    assert (first.added, first.skipped_suppressed) == (2, 2)
    again = import_csv(store, export(tmp_path, "old-subscribed.csv", old), "members")
    assert (again.added, again.unchanged, again.skipped_suppressed) == (0, 2, 2)
    assert [s.email for s in store.stream(["members"])] == ["ana@example.org",
                                                            "ben@example.org"]
    assert store.get("cleo@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert store.get("eve@example.org").status == "bounced"  # type: ignore[union-attr]


def test_an_unsubscribed_export_suppresses_someone_already_active_here(store,
                                                                      tmp_path) -> None:
    store.add("cleo@example.org", "members", "Cleo Durand", {"city": "Genk"})
    store.add("cleo@example.org", "partners")
    summary = import_csv(store, export(tmp_path, "unsubscribed.csv", UNSUBSCRIBED[:2]),
                         "members")
    assert (summary.unsubscribed, summary.unchanged) == (1, 0)
    cleo = store.get("cleo@example.org")
    assert cleo is not None and cleo.status == "unsubscribed"
    assert cleo.fields == {"city": "Genk"}  # what was known stays until erased
    assert store.count_active(["partners"]) == 0  # an unsubscribe suppresses everywhere
    again = import_csv(store, export(tmp_path, "unsubscribed.csv", UNSUBSCRIBED[:2]),
                       "members")
    assert (again.unsubscribed, again.unchanged) == (0, 1)


def test_a_status_column_does_the_same_for_other_sources(store, tmp_path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("email;name;status\n"
                    "ana@example.org;Ana;subscribed\n"
                    "ben@example.org;Ben;Unsubscribed\n"
                    "cleo@example.org;Cleo;bounced\n"
                    "dan@example.org;Dan;complained\n"
                    "eve@example.org;Eve;maybe\n"
                    "fay@example.org;Fay;\n", encoding="utf-8")
    summary = import_csv(store, path, "members")
    assert (summary.added, summary.unsubscribed, summary.bounced, summary.complained) == (
        2, 1, 1, 1)
    assert summary.problems == [(6, "status 'maybe': expected one of subscribed, "
                                    "unsubscribed, bounced, complained")]
    assert [s.email for s in store.stream(["members"])] == ["ana@example.org",
                                                            "fay@example.org"]
    statuses = {a: store.get(a).status for a in ("ben@example.org", "cleo@example.org",  # type: ignore[union-attr]
                                                  "dan@example.org")}
    assert statuses == {"ben@example.org": "unsubscribed", "cleo@example.org": "bounced",
                        "dan@example.org": "complained"}
    assert store.get("ben@example.org").status_reason == "unsubscribed in the imported file"  # type: ignore[union-attr]


def test_an_unreadable_unsubscribe_time_still_suppresses_and_is_reported(store,
                                                                         tmp_path) -> None:
    rows = [UNSUBSCRIBED[0], UNSUBSCRIBED[2].replace("2019-11-02 12:00:00", "last week")]
    summary = import_csv(store, export(tmp_path, "unsubscribed.csv", rows), "members")
    assert summary.unsubscribed == 1 and summary.problems == []
    assert summary.notes == [(2, "'last week' is not a time such as 2020-01-15 09:00:00; "
                                 "the time of this import is recorded instead")]
    assert store.get("dan@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_the_import_command_says_how_many_left(project: Path) -> None:
    export(project, "unsubscribed.csv", UNSUBSCRIBED)
    result = run_cli("subscribers", "import", "unsubscribed.csv", "--list", "members",
                     cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("imported unsubscribed.csv into members: 0 added, 0 updated, "
                             "0 unchanged, 2 unsubscribed, 0 bounced, 0 complained, "
                             "0 skipped-invalid, 0 skipped-duplicate, 0 skipped-suppressed\n")
