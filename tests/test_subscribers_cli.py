"""`newsletter subscribers ...` driven as a subprocess, the way the officer runs it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

COMMANDS = ["import", "export", "add", "remove", "unsubscribe", "lists", "show", "export-person",
            "erase"]
MEMBERS = ("\ufeffEmail Address;First Name;Last Name;City;MEMBER_RATING\n"
           "ana@example.org;Ana;Lopez;Lyon;2\n"
           "not-an-address;Ben;;;1\n"
           "ANA@EXAMPLE.ORG;Ana;L.;;3\n"
           "carol@example.org;Carol;;Liège;1\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli, command: str) -> None:
    result = cli("subscribers", command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example:" in result.stdout and f"newsletter subscribers {command}" in result.stdout


def test_import_reports_bad_rows_and_imports_the_rest(cli, project: Path) -> None:
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    result = cli("subscribers", "import", "members.csv", "--list", "members")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("imported members.csv into members: 2 added, 0 updated, "
                             "0 unchanged, 1 skipped-invalid, 1 skipped-duplicate, "
                             "0 skipped-suppressed\n")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("members.csv:3: 'not-an-address' is not a valid address")
    assert lines[1] == "members.csv:4: same address as row 2, skipped"
    assert "import the file again" in lines[-1]
    database = project / "newsletter.db"  # beside newsletter.toml, private
    assert stat.S_IMODE(database.stat().st_mode) == 0o600

    again = cli("subscribers", "import", "members.csv", "--list", "members")
    assert "0 added, 0 updated, 2 unchanged" in again.stdout


def test_unsubscribed_address_stays_off_after_reimport(cli, project: Path) -> None:
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    cli("subscribers", "import", "members.csv", "--list", "members")
    result = cli("subscribers", "unsubscribe", "Ana@Example.org", "--reason", "phoned us")
    assert result.returncode == 0 and "unsubscribed from every list" in result.stdout

    again = cli("subscribers", "import", "members.csv", "--list", "members")
    assert "1 skipped-suppressed" in again.stdout
    lists = cli("subscribers", "lists")
    assert lists.stdout.splitlines()[1].split() == ["members", "1", "1", "0", "0", "2"]

    shown = cli("subscribers", "show", "ana@example.org")
    assert "status: unsubscribed since" in shown.stdout and "(phoned us)" in shown.stdout
    add = cli("subscribers", "add", "ana@example.org", "--list", "members")
    assert add.returncode == 1
    assert "error: ana@example.org is unsubscribed since" in add.stderr
    assert add.stderr.splitlines()[-1] == "if they asked to be mailed again, add --resubscribe"


def test_add_remove_and_show(cli) -> None:
    added = cli("subscribers", "add", "ana@example.org", "--list", "partners", "--name",
                "Ana Lopez", "--field", "city=Lyon", "--field", "Organisation=Efus")
    assert added.returncode == 0 and added.stdout == "ana@example.org: added on partners\n"
    shown = cli("subscribers", "show", "ANA@example.org").stdout
    assert "name:   Ana Lopez" in shown
    assert "fields: city=Lyon, organisation=Efus" in shown
    assert "list partners: active since" in shown

    assert cli("subscribers", "remove", "ana@example.org", "--list", "partners").returncode == 0
    assert "on no list" in cli("subscribers", "show", "ana@example.org").stdout
    missing = cli("subscribers", "remove", "ana@example.org", "--list", "partners")
    assert missing.returncode == 1 and "is not on the list partners" in missing.stderr


def test_export_writes_a_file_that_imports_back(cli, project: Path) -> None:
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    cli("subscribers", "import", "members.csv", "--list", "members")
    cli("subscribers", "add", "=cmd@example.org", "--list", "members", "--name", "@x")
    result = cli("subscribers", "export", "--list", "members", "-o", "out.csv")
    assert result.returncode == 0 and "exported 3 subscribers of members" in result.stdout
    text = (project / "out.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines() == ["email,name,city", "ana@example.org,Ana Lopez,Lyon",
                                 "carol@example.org,Carol,Liège", "'=cmd@example.org,'@x,"]
    back = cli("subscribers", "import", "out.csv", "--list", "members", "--db", "copy.db")
    assert "3 added" in back.stdout and (project / "copy.db").exists()


def test_commands_that_only_read_need_an_existing_database(cli, project: Path) -> None:
    result = cli("subscribers", "lists")
    assert result.returncode == 1
    assert "newsletter.db: no subscriber database yet" in result.stderr
    assert "newsletter subscribers import FILE.csv --list NAME" in result.stderr
    assert not (project / "newsletter.db").exists()


def test_database_path_comes_from_the_environment(cli, project: Path) -> None:
    result = cli("subscribers", "add", "ana@example.org", "--list", "members",
                 env={"NEWSLETTER_DB": "elsewhere.db"})
    assert result.returncode == 0
    assert (project / "elsewhere.db").exists() and not (project / "newsletter.db").exists()


def test_import_of_a_missing_file_is_a_usage_error(cli, project: Path) -> None:
    result = cli("subscribers", "import", "nope.csv", "--list", "members")
    assert result.returncode == 2 and "'nope.csv' does not exist" in result.stderr
    assert not (project / "newsletter.db").exists()
