"""The issue file: every kind of mistake is reported as `file:line: field: message`, exit 1.

Each test writes a small issue file into a throwaway project and runs the real CLI, the
way the communications officer does; no mistake may end in a Python traceback.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

VALID = """\
    date: 2020-01-10
    subject: Efus Newsletter - January 2020
    preheader: News from our projects
    items:
      - title: BRIDGE in Barcelona
        body: The BRIDGE project met in **Barcelona**.
        link:
          url: https://efus.eu/en/bridge/
          label: Read about the BRIDGE meeting
    agenda:
      - start: 2020-01-14
        end: 2020-01-16
        project: BRIDGE
        event: Study visit
        place: Genk, Belgium
"""


def write_issue(project: Path, text: str, name: str = "bad.yaml") -> str:
    """Write an issue file into the project; return the path as the CLI shows it."""
    (project / "issues" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return f"issues/{name}"


def assert_rejected(result: subprocess.CompletedProcess[str], *expected: str) -> list[str]:
    """Exit 1, no traceback, and each `expected` regex matches one line of stderr."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    for pattern in expected:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, result.stderr)
    assert lines[-1].endswith("fix the file and run the command again.")
    return lines


def test_a_valid_file_builds(project: Path, cli: Cli) -> None:
    path = write_issue(project, VALID, "good.yaml")
    result = cli("build", path)
    assert result.returncode == 0, result.stderr
    assert (project / "build" / "good" / "email.html").is_file()


@pytest.mark.parametrize(("text", "expected"), [
    # a colon inside an unquoted value
    ("date: 2020-01-10\nsubject: Nice 2020: the call\nitems: []\n",
     r"issues/bad\.yaml:2: column 19: YAML syntax error: the value of 'subject' contains ': ': "
     r"put the value in double quotes.*"),
    # a quote left open: the error names where the quoted text starts
    ('date: 2020-01-10\nsubject: "Nice 2020\nitems:\n  - title: A\n    body: B\n',
     r"issues/bad\.yaml:2: column 10: YAML syntax error: this quote is never closed: add the "
     r"closing quote.*"),
    # a tab used for indentation
    ("date: 2020-01-10\nsubject: Hi\nitems:\n\t- title: A\n",
     r"issues/bad\.yaml:4: column 1: YAML syntax error: a tab in the indentation: indent with "
     r"spaces, not tabs"),
])
def test_yaml_syntax_error_gives_line_and_column(project: Path, cli: Cli, text: str,
                                                 expected: str) -> None:
    path = write_issue(project, text)
    assert_rejected(cli("build", path), expected)


def test_missing_subject_is_reported(project: Path, cli: Cli) -> None:
    path = write_issue(project, VALID.replace("    subject: Efus Newsletter - January 2020\n", ""))
    lines = assert_rejected(cli("build", path),
                            r"issues/bad\.yaml:1: subject: required field is missing")
    assert lines[-1] == "1 problem found; fix the file and run the command again."


@pytest.mark.parametrize(("change", "expected"), [
    (("    date: 2020-01-10\n", "    date: 2020-01-10\n    number: twelve\n"),
     r"issues/bad\.yaml:2: number: expected a whole number, got 'twelve'"),
    (("subject: Efus Newsletter - January 2020", "subject: [Efus, January]"),
     r"issues/bad\.yaml:2: subject: expected text, got a list"),
    (("        body: The BRIDGE", "        featured: maybe\n        body: The BRIDGE"),
     r"issues/bad\.yaml:6: items\[0\]\.featured: expected true or false, got 'maybe'"),
    (("    date: 2020-01-10\n", "    date: 2020-01-10\n    lists: members\n"),
     r"issues/bad\.yaml:2: lists: expected a list of list names, got 'members'"),
])
def test_wrong_type_is_reported(project: Path, cli: Cli, change: tuple[str, str],
                                expected: str) -> None:
    assert change[0] in VALID
    path = write_issue(project, VALID.replace(*change))
    assert_rejected(cli("build", path), expected)


def test_unknown_key_is_an_error_with_a_hint(project: Path, cli: Cli) -> None:
    text = VALID.replace("    preheader:", "    preheadr:").replace("        link:", "        lnk:")
    assert_rejected(
        cli("build", write_issue(project, text)),
        r"issues/bad\.yaml:3: preheadr: unknown field \(did you mean 'preheader'\?\); "
        r"expected one of: .*\bsubject\b.*",
        r"issues/bad\.yaml:7: items\[0\]\.lnk: unknown field \(did you mean 'link'\?\); "
        r"expected one of: body, featured, image, link, section, title",
    )


@pytest.mark.parametrize("url", ["efus.eu/en/bridge/", "javascript:alert(1)", "ftp://efus.eu/"])
def test_bad_url_is_reported(project: Path, cli: Cli, url: str) -> None:
    path = write_issue(project, VALID.replace("https://efus.eu/en/bridge/", url))
    assert_rejected(cli("build", path),
                    rf"issues/bad\.yaml:8: items\[0\]\.link\.url: expected an http\(s\) or "
                    rf"mailto: URL, got '{re.escape(url)}'")


@pytest.mark.parametrize(("change", "expected"), [
    (("date: 2020-01-10", "date: 10/01/2020"),
     r"issues/bad\.yaml:1: date: expected a date like 2020-01-15, got '10/01/2020'"),
    (("date: 2020-01-10", "date: 2020-13-10"),
     r"issues/bad\.yaml:1: date: expected a date like 2020-01-15, got '2020-13-10' "
     r"\(month must be in 1\.\.12\)"),
    (("start: 2020-01-14", "start: 2020-02-30"),
     r"issues/bad\.yaml:11: agenda\[0\]\.start: expected a date like 2020-01-15, "
     r"got '2020-02-30' \(day is out of range for month\)"),
])
def test_bad_date_is_reported(project: Path, cli: Cli, change: tuple[str, str],
                              expected: str) -> None:
    path = write_issue(project, VALID.replace(*change))
    assert_rejected(cli("build", path), expected)


def test_end_date_before_start_date_is_reported(project: Path, cli: Cli) -> None:
    path = write_issue(project, VALID.replace("end: 2020-01-16", "end: 2020-01-12"))
    assert_rejected(cli("build", path),
                    r"issues/bad\.yaml:12: agenda\[0\]\.end: expected an end date on or after "
                    r"the start 2020-01-14, got 2020-01-12")


@pytest.mark.parametrize("value", ["2020-01-10T09:00", "2020-01-10 09:00:00"])
def test_send_at_without_time_zone_is_an_error(project: Path, cli: Cli, value: str) -> None:
    text = VALID.replace("    items:\n", f"    send_at: {value}\n    items:\n")
    assert_rejected(cli("build", write_issue(project, text)),
                    r"issues/bad\.yaml:4: send_at: expected a time zone, as in "
                    rf"2020-01-15T09:00\+01:00, got '{value}' without one")


def test_send_at_with_time_zone_is_accepted(project: Path, cli: Cli) -> None:
    text = VALID.replace("    items:\n", "    send_at: 2020-01-10T09:00:00+01:00\n    items:\n")
    result = cli("build", write_issue(project, text, "good.yaml"))
    assert result.returncode == 0, result.stderr


def test_every_problem_of_a_file_is_reported_at_once_in_file_order(project: Path, cli: Cli) -> None:
    text = (VALID.replace("    subject: Efus Newsletter - January 2020\n", "")
            .replace("preheader:", "preheadr:")
            .replace("https://efus.eu/en/bridge/", "efus.eu/en/bridge/")
            .replace("start: 2020-01-14", "start: 14/01/2020")
            .replace("end: 2020-01-16", "end: tomorrow"))
    lines = assert_rejected(
        cli("build", write_issue(project, text)),
        r"issues/bad\.yaml:1: subject: required field is missing",
        r"issues/bad\.yaml:2: preheadr: unknown field.*",
        r"issues/bad\.yaml:7: items\[0\]\.link\.url: expected an http\(s\).*",
        r"issues/bad\.yaml:10: agenda\[0\]\.start: expected a date.*",
        r"issues/bad\.yaml:11: agenda\[0\]\.end: expected a date.*",
    )
    assert lines[-1] == "5 problems found; fix the file and run the command again."
    numbers = [int(line.split(":")[1]) for line in lines[:-1]]
    assert numbers == sorted(numbers)


def test_text_fields_keep_values_yaml_would_read_as_something_else(project: Path, cli: Cli) -> None:
    text = VALID.replace("    preheader: News from our projects",
                         "    title: 2020-02-30\n    preheader: No")
    result = cli("build", write_issue(project, text, "good.yaml"))
    assert result.returncode == 0, result.stderr
    html = (project / "build" / "good" / "email.html").read_text(encoding="utf-8")
    assert "2020-02-30" in html


def test_missing_file_is_reported_without_traceback(project: Path, cli: Cli) -> None:
    result = cli("build", "issues/nope.yaml")
    assert_rejected(result, r"issues/nope\.yaml: no such file")


@pytest.mark.parametrize(("slug", "pages"), [("unsubscribe", "the unsubscribe pages"),
                                             ("subscribe", "the sign-up form"),
                                             ("webhooks", "the mail services' webhooks")])
def test_a_slug_that_is_a_path_of_the_web_server_is_refused(project: Path, cli: Cli, slug: str,
                                                           pages: str) -> None:
    path = write_issue(project, f"slug: {slug}\n" + textwrap.dedent(VALID))
    assert_rejected(cli("check", path),
                    rf"issues/bad\.yaml:1: slug: expected another name: '{slug}' is the "
                    rf"address of {pages} on newsletter serve")


def test_an_alias_bomb_is_refused_at_its_line_without_expanding(project: Path, cli: Cli) -> None:
    # Nine levels of nine aliases: 9**9 values if expanded (python tests/bench/bench_hostile.py
    # prints the time and memory it takes).
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    text = "\n".join(lines) + "\ndate: 2020-01-10\nsubject: Hi\nitems: *i\n"
    path = write_issue(project, text)
    result = cli("check", path, timeout=60)
    assert_rejected(result, r"issues/bad\.yaml:2: b\[0\]: aliases \(\*name\) are not allowed in an "
                            r"issue file: write the value out in full",
                    r"issues/bad\.yaml:12: items: aliases \(\*name\) are not allowed.*")
    assert "MemoryError" not in result.stderr


@pytest.mark.parametrize(("value", "tag"), [
    ("!!binary aGVsbG8=", "!!binary"), ("!!python/name:os.system x", "!!python/name:os.system"),
    ("!anything some text", "!anything"), ("!!set {a, b}", "!!set"),
])
def test_tags_other_than_plain_types_are_errors_at_their_line(project: Path, cli: Cli,
                                                              value: str, tag: str) -> None:
    path = write_issue(project, VALID + f"    footer: {value}\n")
    assert_rejected(cli("build", path), rf"issues/bad\.yaml:16: footer: the tag {re.escape(tag)} "
                                        r"is not allowed in an issue file: remove it .*")


def test_problems_after_a_syntax_error_are_still_reported(project: Path, cli: Cli) -> None:
    text = textwrap.dedent(VALID).replace("preheader: News from our projects",
                                          "preheader: News: from our projects")
    text = text.replace("  - start: 2020-01-14", "  - start: 2020-13-14")
    text += "footr: Efus\n"
    (project / "issues" / "bad.yaml").write_text(text, encoding="utf-8")
    lines = assert_rejected(
        cli("check", "issues/bad.yaml"),
        r"issues/bad\.yaml:3: column 16: YAML syntax error: the value of 'preheader' contains "
        r"': ': put the value in double quotes.*",
        r"issues/bad\.yaml:11: agenda\[0\]\.start: expected a date like 2020-01-15, got "
        r"'2020-13-14'.*",
        r"issues/bad\.yaml:16: footr: unknown field \(did you mean 'footer'\?\).*")
    assert lines[-1].startswith("3 problems found")
