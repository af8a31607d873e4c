"""One slug, one issue: a copy of last month's file that kept its slug is refused everywhere.

The build folder, the web address and the send ledger are keyed on the slug; February
under January's slug would "resume" January's finished send and send nobody anything.
Resuming a send after its content changed (a typo fixed mid-send) needs --new-version.
"""

from __future__ import annotations

import json
from pathlib import Path

from smtp_server import Behaviour, SmtpServer
from test_dispatch import add_subscribers, configure, received

JANUARY = Path("issues/2020-01.yaml")
FEBRUARY = Path("issues/2020-02.yaml")


def copy_keeping_the_slug(project: Path, send_at: str = "2020-02-07T09:00+01:00") -> None:
    """What a user does: copy January, change date, subject, content and send_at."""
    text = (project / JANUARY).read_text(encoding="utf-8")
    text = text.replace("date: 2020-01-10", "date: 2020-02-07")
    text = text.replace("January 2020", "February 2020")
    text = text.replace("Happy new year from the whole Efus team!", "Welcome to February!")
    text = text.replace("lists: [members]", f"lists: [members]\nsend_at: {send_at}")
    (project / FEBRUARY).write_text(text, encoding="utf-8")


def smtp(server: SmtpServer) -> str:
    return f"smtp://127.0.0.1:{server.port}?tls=off"


def test_a_copy_that_kept_last_months_slug_is_refused_by_check_build_send_and_due(
        project: Path, cli) -> None:
    add_subscribers(project, 3)
    configure(project)
    with SmtpServer() as server:
        assert cli("send", str(JANUARY), "--yes", "--transport", smtp(server)).returncode == 0
        january_build = cli("build", str(JANUARY))
        assert january_build.returncode == 0, january_build.stderr
        built = (project / "build" / "2020-01" / "email.html").read_bytes()
        copy_keeping_the_slug(project)
        expected = ("issues/2020-02.yaml:7: slug: '2020-01' is the slug of issues/2020-01.yaml: "
                    "both would share one build folder, web address and send; give this issue "
                    "its own slug (slug: 2020-02, as its file name)")

        checked = cli("check", str(FEBRUARY))
        assert checked.returncode == 1
        assert expected in checked.stderr.splitlines()

        rebuilt = cli("build", str(FEBRUARY))
        assert rebuilt.returncode == 1
        assert expected in rebuilt.stderr.splitlines()
        assert (project / "build" / "2020-01" / "email.html").read_bytes() == built

        sent = cli("send", str(FEBRUARY), "--yes", "--transport", smtp(server))
        assert sent.returncode == 1
        assert expected in sent.stderr.splitlines()
        assert "this run sent" not in sent.stdout

        cron = cli("send", "--due", "--now", "2020-02-07T09:05+01:00", "--transport",
                   smtp(server))
        assert cron.returncode == 1
        assert cron.stderr.splitlines()[-1] == (
            "2020-01: its slug '2020-01' is the slug of issues/2020-01.yaml; nothing sent: "
            "give issues/2020-02.yaml its own slug")
        assert len(server.accepted) == 3  # January's, nothing more
        assert "Traceback" not in checked.stderr + rebuilt.stderr + sent.stderr + cron.stderr


def test_the_send_of_another_issue_holds_its_slug_even_after_its_file_is_gone(
        project: Path, cli) -> None:
    add_subscribers(project, 2)
    configure(project)
    with SmtpServer() as server:
        assert cli("send", str(JANUARY), "--yes", "--transport", smtp(server)).returncode == 0
        copy_keeping_the_slug(project)
        (project / JANUARY).unlink()
        for command in (("check", str(FEBRUARY)), ("build", str(FEBRUARY)),
                        ("send", str(FEBRUARY), "--yes", "--transport", smtp(server))):
            result = cli(*command)
            assert result.returncode == 1, command
            assert ("issues/2020-02.yaml:7: slug: '2020-01' is taken by the send of "
                    "2020-01.yaml, the issue of 2020-01-10 (started ") in result.stderr
            assert ", complete, 2 sent): sending this one would continue that send; give this " \
                   "issue its own slug (slug: 2020-02, as its file name)" in result.stderr
        cron = cli("send", "--due", "--now", "2020-02-07T09:05+01:00", "--transport",
                   smtp(server))
        assert cron.returncode == 1
        assert "is taken by the send of 2020-01.yaml" in cron.stderr.splitlines()[-1]
        assert len(server.accepted) == 2


def test_its_own_slug_makes_the_copy_a_new_send(project: Path, cli) -> None:
    addresses = add_subscribers(project, 2)
    configure(project)
    with SmtpServer() as server:
        assert cli("send", str(JANUARY), "--yes", "--transport", smtp(server)).returncode == 0
        copy_keeping_the_slug(project)
        text = (project / FEBRUARY).read_text().replace("slug: 2020-01", "slug: 2020-02")
        (project / FEBRUARY).write_text(text)
        assert cli("check", str(FEBRUARY)).returncode == 0
        cron = cli("send", "--due", "--now", "2020-02-07T09:05+01:00", "--transport",
                   smtp(server))
        assert cron.returncode == 0, cron.stderr
        assert received(server) == {address: 2 for address in addresses}


def test_resuming_after_a_change_needs_new_version_and_status_shows_both(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 4)
    configure(project, retry_base="1s", retry_max_wait="0s")
    late = addresses[-1]
    with SmtpServer(Behaviour(rcpt_replies={late: "451 4.3.0 try again later"},
                              rcpt_reply_times=1)) as server:
        first = cli("send", str(JANUARY), "--yes", "--transport", smtp(server))
        assert first.returncode == 1  # one recipient deferred: the send is incomplete
        text = (project / JANUARY).read_text()
        (project / JANUARY).write_text(text.replace("Happy new year", "Happy New Year"))

        refused = cli("send", str(JANUARY), "--yes", "--transport", smtp(server))
        assert refused.returncode == 1
        assert "issues/2020-01.yaml:7: slug: changed since its send under '2020-01' started " \
               "(started " in refused.stderr
        assert "incomplete, 3 sent); to send the rest this version, deliberately: newsletter " \
               "send issues/2020-01.yaml --new-version" in refused.stderr
        assert cli("check", str(JANUARY)).returncode == 1
        assert received(server)[late] == 0

        configure(project, retry_base="1s", retry_max_wait="30s")
        resumed = cli("send", str(JANUARY), "--yes", "--new-version", "--transport",
                      smtp(server))
        assert resumed.returncode == 0, resumed.stderr
        assert received(server) == {address: 1 for address in addresses}
        last = server.accepted[-1]
        assert last.rcpt_tos == [late] and b"Happy New Year" in last.data
        assert all(b"Happy new year" in m.data for m in server.accepted[:-1])

    shown = cli("status", str(JANUARY))
    assert "2 versions of the issue (resumed with --new-version): " in shown.stdout
    versions = json.loads(cli("status", str(JANUARY), "--json").stdout)["versions"]
    assert len(versions) == 2 and versions[0]["content_hash"] != versions[1]["content_hash"]
