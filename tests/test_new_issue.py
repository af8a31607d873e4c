"""`newsletter new`: next month's issue from the last, as the officer starts each month."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parent.parent


def test_new_from_the_sample_issue_builds_and_checks_clean_but_for_unchanged_items(
        project: Path, cli: Cli) -> None:
    assert cli("subscribers", "import", str(REPO / "examples" / "members.csv"), "--list",
               "members").returncode == 0
    made = cli("new")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        "wrote issues/2020-02.yaml from issues/2020-01.yaml (No. 2, 2020-02-10, 4 past agenda "
        "entries left out); images go in issues/2020-02/",
        "rewrite its items, then run: newsletter check issues/2020-02.yaml"]
    text = (project / "issues" / "2020-02.yaml").read_text(encoding="utf-8")
    assert "# Build it:    newsletter build issues/2020-01.yaml" in text  # comments kept
    for line in ("number: 2", "slug: 2020-02", "date: 2020-02-10",
                 'title: "Efus Newsletter – February 2020"',
                 'subject: "Efus Newsletter – February 2020: Nice 2020, General Assembly in Riga"'):
        assert f"\n{line}\n" in text, line
    assert re.findall(r"- start: (\S+)", text) == ["2020-03-26", "2020-03-30", "2020-04-02"]
    assert (project / "issues" / "2020-02").is_dir()

    built = cli("build", "issues/2020-02.yaml")
    assert built.returncode == 0, built.stderr
    assert (project / "build" / "2020-02" / "email.html").is_file()
    checked = cli("check", "issues/2020-02.yaml")
    assert checked.returncode == 0, checked.stderr
    findings = checked.stderr.splitlines()
    assert len(findings) == 11  # ten items and a highlight box, all last month's text
    assert all(re.fullmatch(r"issues/2020-02\.yaml:\d+: (items|highlights)\[\d+\]\.body: "
                            r"warning: unchanged since 2020-01 \(issues/2020-01\.yaml:\d+\): "
                            r"update it, or remove it", line) for line in findings), findings
    assert findings[0].startswith("issues/2020-02.yaml:27: items[0].body: warning: unchanged "
                                  "since 2020-01 (issues/2020-01.yaml:27)")
    assert checked.stdout.strip() == "issues/2020-02.yaml: 0 error(s), 11 warning(s); sendable."


def test_an_item_that_was_rewritten_is_not_reported(project: Path, cli: Cli) -> None:
    assert cli("new").returncode == 0
    path = project / "issues" / "2020-02.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Willy Demeyer, Mayor of Liège", "The Mayor of Liège"),
                    encoding="utf-8")
    checked = cli("check", "issues/2020-02.yaml")
    unchanged = [line for line in checked.stderr.splitlines() if "unchanged since" in line]
    assert len(unchanged) == 10
    assert not any("items[2]" in line for line in unchanged)


def test_send_at_moves_by_the_same_interval_in_its_time_zone(project: Path, cli: Cli) -> None:
    january = project / "issues" / "2020-01.yaml"
    january.write_text(january.read_text().replace(
        "lists: [members]", "lists: [members]\nsend_at: 2020-01-10T09:30+01:00"))
    made = cli("new", "--from", "issues/2020-01.yaml", "--date", "2020-02-07")
    assert made.returncode == 0, made.stderr
    text = (project / "issues" / "2020-02.yaml").read_text()
    assert "\nsend_at: 2020-02-07T09:30+01:00\n" in text
    assert "\ndate: 2020-02-07\n" in text
    assert re.findall(r"- start: (\S+)", text) == ["2020-03-26", "2020-03-30", "2020-04-02"]


def test_new_never_overwrites_a_file(project: Path, cli: Cli) -> None:
    existing = project / "issues" / "2020-02.yaml"
    existing.write_text("# February, half written\n")
    made = cli("new")
    assert made.returncode == 1
    assert made.stderr.splitlines() == [
        "error: issues/2020-02.yaml already exists; nothing written",
        "open it and edit it, or choose another month with --date YYYY-MM-DD"]
    assert existing.read_text() == "# February, half written\n"


def test_new_starts_from_the_latest_issue(project: Path, cli: Cli) -> None:
    assert cli("new").returncode == 0
    made = cli("new")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("wrote issues/2020-03.yaml from issues/2020-02.yaml (No. 3, "
                                  "2020-03-10")
