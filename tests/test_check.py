"""`newsletter check`: errors stop a send (exit 1), warnings are printed and exit 0."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parent.parent

ISSUE = """\
    date: 2020-01-10
    subject: Efus Newsletter - January 2020
    preheader: News from our projects
    items:
      - title: BRIDGE in Barcelona
        body: The BRIDGE project met in **Barcelona**.
    agenda:
      - start: 2020-01-14
        project: BRIDGE
        event: Study visit
        place: Genk, Belgium
      - start: 2020-01-22
        project: CCI
        event: Design lab
        place: Barcelona, Spain
"""


def check(project: Path, cli: Cli, text: str) -> subprocess.CompletedProcess[str]:
    (project / "issues" / "check.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    result = cli("check", "issues/check.yaml")
    assert "Traceback" not in result.stderr
    return result


def findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("issues/check.yaml:")
            and not re.search(r": \d+ error\(s\), \d+ warning\(s\)", line)]


def test_sample_issue_is_ready_to_send(cli: Cli) -> None:
    assert cli("subscribers", "import", str(REPO / "examples" / "members.csv"), "--list",
               "members").returncode == 0
    result = cli("check", "issues/2020-01.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == \
        "issues/2020-01.yaml: 0 error(s), 0 warning(s); ready to send."


def test_a_clean_issue_has_no_findings(project: Path, cli: Cli) -> None:
    result = check(project, cli, ISSUE)
    assert result.returncode == 0, result.stderr
    assert findings(result) == []
    assert "ready to send" in result.stdout


def test_leftover_template_syntax_is_an_error(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("The BRIDGE project met", "Dear {{ name }}, the BRIDGE project met")
    result = check(project, cli, text)
    assert result.returncode == 1
    found = findings(result)
    assert any(re.match(r"issues/check\.yaml: leftover template syntax '\{\{' in the HTML "
                        r"part: .*Dear \{\{ name \}\}", line) for line in found), found
    assert any("leftover template syntax '{{' in the text part" in line for line in found)
    assert result.stderr.splitlines()[-1] == \
        "issues/check.yaml: 2 error(s), 0 warning(s); fix the errors before sending."


def test_compact_css_in_a_theme_is_not_taken_for_template_syntax(project: Path, cli: Cli) -> None:
    theme = project / "templates" / "compact"
    shutil.copytree(REPO / "templates" / "default", theme)
    template = theme / "newsletter.mjml.j2"
    text = template.read_text(encoding="utf-8")
    text = re.sub(r"(?s)<mj-style>.*?</mj-style>",
                  "<mj-style>@media (max-width:479px){h1{font-size:22px !important}}</mj-style>",
                  text)
    template.write_text(text, encoding="utf-8")
    result = check(project, cli, ISSUE.replace("    items:", "    template: compact\n    items:"))
    assert result.returncode == 0, result.stderr
    assert findings(result) == []


def test_html_over_gmail_clipping_size_is_an_error(project: Path, cli: Cli) -> None:
    paragraph = "Local authorities met to exchange practices on urban security. " * 30
    items = "".join(f"      - title: Item {n}\n        body: {paragraph}\n" for n in range(60))
    text = ISSUE.replace(ISSUE[ISSUE.index("      - title"):ISSUE.index("    agenda:")], items)
    result = check(project, cli, text)
    assert result.returncode == 1
    found = findings(result)
    assert len(found) == 1
    assert re.fullmatch(r"issues/check\.yaml: the HTML is \d+\.\d KB; Gmail clips messages "
                        r"above 102 KB \(shorten the issue or move items to the web\)", found[0])
    size = float(re.search(r"the HTML is (\d+\.\d) KB", found[0]).group(1))  # type: ignore[union-attr]
    assert size > 102


def test_missing_preheader_is_a_warning(project: Path, cli: Cli) -> None:
    result = check(project, cli, ISSUE.replace("    preheader: News from our projects\n", ""))
    assert result.returncode == 0, result.stderr
    assert findings(result) == ["issues/check.yaml: preheader: warning: no preheader: inboxes "
                                "will show the first words of the email instead"]
    assert result.stdout.strip() == \
        "issues/check.yaml: 0 error(s), 1 warning(s); sendable."


def test_long_subject_is_a_warning_at_its_line(project: Path, cli: Cli) -> None:
    subject = "Efus Newsletter - January 2020 - Nice 2020, the General Assembly in Riga and more"
    result = check(project, cli, ISSUE.replace("Efus Newsletter - January 2020", subject))
    assert result.returncode == 0, result.stderr
    assert findings(result) == [f"issues/check.yaml:2: subject: warning: subject is "
                                f"{len(subject)} characters; inboxes show about 70"]


def test_agenda_out_of_order_is_a_warning(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("start: 2020-01-22", "start: 2020-01-12")
    result = check(project, cli, text)
    assert result.returncode == 0, result.stderr
    assert findings(result) == ["issues/check.yaml:12: agenda[1].start: warning: agenda out "
                                "of order: 2020-01-12 comes after 2020-01-14"]


def test_agenda_before_the_issue_date_is_a_warning(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("start: 2020-01-14", "start: 2020-01-08")
    result = check(project, cli, text)
    assert result.returncode == 0, result.stderr
    assert findings(result) == ["issues/check.yaml:8: agenda[0].start: warning: event ending "
                                "2020-01-08 is over before the issue date 2020-01-10: readers "
                                "cannot go to it any more"]


def test_plain_http_link_is_a_warning(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("met in **Barcelona**.", "met in [Barcelona](http://efus.eu/bcn).")
    result = check(project, cli, text)
    assert result.returncode == 0, result.stderr
    assert findings(result) == ["issues/check.yaml: warning: link 'http://efus.eu/bcn' is not "
                                "https"]


def test_check_reports_an_invalid_file_like_build(project: Path, cli: Cli) -> None:
    result = check(project, cli, ISSUE.replace("date: 2020-01-10", "date: 2020-01-32"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "issues/check.yaml:1: date: expected a date like 2020-01-15, got '2020-01-32' "
        "(day is out of range for month)")
