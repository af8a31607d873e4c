"""A person's access and erasure requests, answered with the CLI as the officer would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import reports
from sends import configure, original, record_send, subscribe

MEMBERS = ("Email Address,First Name,Last Name,City,OPTIN_TIME,CONFIRM_TIME,LEID\n"
           "ana@example.org,Ana,Lopez,Lyon,2019-03-01 10:00:00,2019-03-01 10:01:00,1\n"
           "ben@example.org,Ben,Martin,Genk,,,2\n")


def setup(cli, project: Path) -> None:  # type: ignore[no-untyped-def]
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    assert cli("subscribers", "import", "members.csv", "--list", "members").returncode == 0
    assert cli("subscribers", "add", "ana@example.org", "--list", "partners").returncode == 0
    sent = cli("send", "issues/2020-01.yaml", "--list", "members", "--yes")
    assert sent.returncode == 0, sent.stderr


def test_export_person_prints_everything_held_as_json(cli, project: Path) -> None:
    setup(cli, project)
    result = cli("subscribers", "export-person", "ANA@example.org")
    assert result.returncode == 0, result.stderr
    held = json.loads(result.stdout)
    assert (held["email"], held["held"], held["name"], held["status"]) == (
        "ana@example.org", True, "Ana Lopez", "active")
    assert held["fields"] == {"city": "Lyon"}
    assert [(m["list"], m["status"]) for m in held["lists"]] == [("members", "active"),
                                                                ("partners", "active")]
    assert [(c["lists"], c["source"], c["given_at"], c["confirmed_at"])
            for c in held["consents"]] == [
        (["members"], "imported from Mailchimp (members.csv)", "2019-03-01T10:00:00Z",
         "2019-03-01T10:01:00Z"),
        (["partners"], "added by hand", held["consents"][1]["given_at"], None)]
    [sent] = held["sends"]
    assert (sent["issue"], sent["list"], sent["state"], sent["attempts"]) == (
        "2020-01", "members", "sent", 1)
    assert sent["last_attempt_at"].endswith("Z") and sent["address"] == "ana@example.org"

    to_file = cli("subscribers", "export-person", "ana@example.org", "-o", "ana.json")
    assert to_file.stdout == "wrote what is held about ana@example.org to ana.json\n"
    assert json.loads((project / "ana.json").read_text(encoding="utf-8")) == held
    nobody = cli("subscribers", "export-person", "zoe@example.org")
    assert nobody.returncode == 0 and json.loads(nobody.stdout) == {
        "email": "zoe@example.org", "held": False}
    assert "nothing is held about zoe@example.org" in nobody.stderr


def test_erase_deletes_the_person_and_no_import_brings_them_back(cli, project: Path) -> None:
    setup(cli, project)
    asked = cli("subscribers", "erase", "ana@example.org")  # no terminal, no --yes
    assert asked.returncode == 2 and "add --yes" in asked.stderr
    result = cli("subscribers", "erase", "ana@example.org", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "ana@example.org: erased (the subscriber, 2 list membership(s), 2 consent record(s), "
        "1 send record(s), 0 bounce or complaint record(s))")

    files = [p for p in project.iterdir() if p.name.startswith("newsletter.db")]
    for path in files:  # the rows are overwritten, not just unlinked from the b-tree
        data = path.read_bytes()
        assert b"ana@example.org" not in data and b"Lopez" not in data, path.name
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT count(*) FROM erased").fetchone()[0] == 1
        assert db.execute("SELECT email FROM deliveries").fetchall() == [("ben@example.org",)]

    held = json.loads(cli("subscribers", "export-person", "ana@example.org").stdout)
    assert held["held"] is False and held["erased_at"].endswith("Z")
    again = cli("subscribers", "import", "members.csv", "--list", "members")
    assert "0 added" in again.stdout and "1 skipped-suppressed" in again.stdout
    add = cli("subscribers", "add", "Ana@Example.org", "--list", "members", "--resubscribe")
    assert add.returncode == 1 and "was erased on request on" in add.stderr
    unsubscribed = cli("subscribers", "unsubscribe", "ana@example.org")
    assert unsubscribed.returncode == 0
    shown = cli("subscribers", "show", "ana@example.org")
    assert shown.returncode == 1  # still nothing but the hash
    assert "ben@example.org" in cli("subscribers", "export", "--list", "members").stdout


def test_erasing_an_address_never_held_suppresses_it_from_then_on(cli, project: Path) -> None:
    result = cli("subscribers", "erase", "zoe@example.org", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("zoe@example.org: nothing was held\n")
    (project / "later.csv").write_text("email\nzoe@example.org\nyan@example.org\n",
                                       encoding="utf-8")
    later = cli("subscribers", "import", "later.csv", "--list", "members")
    assert "1 added" in later.stdout and "1 skipped-suppressed" in later.stdout


def test_bounces_and_complaints_are_exported_and_erased_with_the_person(
        cli, project: Path) -> None:
    configure(project)
    subscribe(project, "ana@example.net", "ben@example.net")
    sent = record_send(project, "2020-01")
    ana, ben = sent["ana@example.net"], sent["ben@example.net"]
    for report in (reports.postfix_dsn(original(ana), ana.email, ana.return_path),
                   reports.yahoo_arf(original(ben), ben.email, ben.return_path)):
        received = cli("bounces", "receive", input=report.decode("utf-8"))
        assert received.returncode == 0 and "recorded" in received.stdout, received.stderr

    held = json.loads(cli("subscribers", "export-person", "ana@example.net").stdout)
    [bounce] = held["bounces"]
    assert (bounce["issue"], bounce["kind"], bounce["status"], bounce["via"],
            bounce["address"]) == ("2020-01", "hard", "5.1.1", "pipe", "ana@example.net")
    assert "User unknown" in bounce["diagnostic"] and bounce["recorded_at"].endswith("Z")
    assert held["status"] == "bounced"

    erased = cli("subscribers", "erase", "ana@example.net", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "1 bounce or complaint record(s)" in erased.stdout.splitlines()[0]
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT recipient, kind FROM delivery_events").fetchall() == [
            ("ben@example.net", "complaint")]
    for path in project.glob("newsletter.db*"):  # the report's text is overwritten too
        assert b"ana@example.net" not in path.read_bytes(), path.name
    # a second report about the erased delivery names no one any more
    late = cli("bounces", "receive", input=reports.postfix_dsn(
        original(ana), ana.email, ana.return_path).decode("utf-8"))
    assert late.returncode == 0 and "recorded" not in late.stdout
    assert cli("subscribers", "show", "ana@example.net").returncode == 1
