"""Addresses and names the wire can carry: refused at the door, or sent the way SMTP needs.

A name or field with a control character would break the message's headers or lines, so it
is refused when it comes in, and shown escaped. A non-ASCII domain goes out as IDNA; a
non-ASCII local part needs a server that offers SMTPUTF8, or fails with that reason.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from smtp_server import SmtpServer
from test_dispatch import configure

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-01.yaml"


def test_a_name_or_field_with_a_control_character_is_refused_by_add(cli: Cli) -> None:
    for args, shown in ((("--name", "Ana\nLopez"), "name 'Ana\\nLopez'"),
                        (("--field", "city=Lyon\u2028Paris"), "field city 'Lyon\\u2028Paris'"),
                        (("--name", "Ana\x85Lopez"), "name 'Ana\\x85Lopez'")):
        result = cli("subscribers", "add", "ana@example.org", "--list", "members", *args)
        assert result.returncode == 1
        assert result.stderr.splitlines()[0].startswith(
            f"error: ana@example.org: {shown} contains a control character (U+")
        assert "\u2028" not in result.stderr and "\x85" not in result.stderr
    assert "not in the database" in cli("subscribers", "show", "ana@example.org").stderr


def test_import_refuses_rows_with_control_characters_and_imports_the_rest(
        project: Path, cli: Cli) -> None:
    (project / "people.csv").write_text(
        'email,name,city\nana@example.org,"Ana\rLopez",Lyon\nbo@example.org,Bo,"Ri\u0085ga"\n'
        "cy@example.org,Cy,Nice\n", encoding="utf-8", newline="")
    result = cli("subscribers", "import", "people.csv", "--list", "members")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        "people.csv:2: name 'Ana\\rLopez' contains a control character (U+000D, a line break "
        "or the like); fix it",
        "people.csv:3: field city 'Ri\\x85ga' contains a control character (U+0085, a line "
        "break or the like); fix it"]
    assert "1 added" in result.stdout and "2 skipped-invalid" in result.stdout


def write_people(project: Path) -> None:
    (project / "people.csv").write_text(
        "email,name\nzoë@example.org,Zoë\nana@bücher.example,Ana\nbo@example.org,Bo\n",
        encoding="utf-8")


def test_non_ascii_domains_go_as_idna_and_local_parts_with_smtputf8(project: Path,
                                                                     cli: Cli) -> None:
    write_people(project)
    imported = cli("subscribers", "import", "people.csv", "--list", "members")
    assert imported.returncode == 0, imported.stderr
    assert "1 address(es) have non-ASCII before the @: only a mail server that offers " \
           "SMTPUTF8 can take them" in imported.stdout
    configure(project)
    with SmtpServer(smtputf8=True) as server:
        sent = cli("send", ISSUE, "--yes", "--transport",
                   f"smtp://127.0.0.1:{server.port}?tls=off")
        assert sent.returncode == 0, sent.stderr
        assert sorted(server.recipients()) == ["ana@xn--bcher-kva.example", "bo@example.org",
                                               "zoë@example.org"]
        to_zoe = next(m for m in server.accepted if m.rcpt_tos == ["zoë@example.org"])
        assert "To: =?utf-8?q?Zo=C3=AB?= <zoë@example.org>\r\n" in to_zoe.data.decode("utf-8")


def test_without_smtputf8_a_non_ascii_local_part_fails_with_that_reason(project: Path,
                                                                        cli: Cli) -> None:
    write_people(project)
    assert cli("subscribers", "import", "people.csv", "--list", "members").returncode == 0
    configure(project)
    with SmtpServer() as server:
        sent = cli("send", ISSUE, "--yes", "--transport",
                   f"smtp://127.0.0.1:{server.port}?tls=off")
        assert "Traceback" not in sent.stderr
        assert sorted(server.recipients()) == ["ana@xn--bcher-kva.example", "bo@example.org"]
    status = json.loads(cli("status", ISSUE, "--json").stdout)
    assert status["counts"] == {"sent": 2, "failed": 1}
    assert status["failed"] == [{"email": "zoë@example.org", "reply": (
        f"address 'zoë@example.org' has non-ASCII before the @, which needs SMTPUTF8 (RFC 6531); "
        f"127.0.0.1:{server.port} does not offer it")}]


def test_a_row_that_left_keeps_its_status_though_its_name_has_a_control_character(
        project: Path, cli: Cli) -> None:
    (project / "left.csv").write_text(
        'email,name,status\nana@example.org,"Ana\rLopez",unsubscribed\n', encoding="utf-8",
        newline="")
    result = cli("subscribers", "import", "left.csv", "--list", "members")
    assert result.returncode == 0, result.stderr
    assert "1 unsubscribed" in result.stdout and "0 skipped-invalid" in result.stdout
    assert "its name and fields were left out, the address recorded as unsubscribed" \
        in result.stderr
    shown = cli("subscribers", "show", "ana@example.org").stdout
    assert "status: unsubscribed" in shown and "name:   -" in shown
