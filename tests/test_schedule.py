"""`send --due` as cron runs it: the clock set with --now, real SMTP, the ledger on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from smtp_server import Behaviour, SmtpServer
from test_dispatch import add_subscribers, configure, received, status

ISSUE = Path("issues/2020-01.yaml")
SEND_AT = "2020-01-15T09:00+01:00"  # 08:00 UTC
BEFORE, ON_TIME, LATE = "2020-01-15T08:30+01:00", "2020-01-15T09:01+01:00", \
    "2020-01-15T23:00+01:00"


def schedule(project: Path, send_at: str | None = SEND_AT, extra: str = "") -> None:
    """Give the sample issue a send_at (and its lists: members)."""
    text = (project / ISSUE).read_text()
    if send_at is not None:
        text = text.replace("lists: [members]", f"lists: [members]\nsend_at: {send_at}")
    (project / ISSUE).write_text(text + extra)


def due(cli, server: SmtpServer, now: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli("send", "--due", "--now", now, "--transport",
               f"smtp://127.0.0.1:{server.port}?tls=off", *extra)


def test_nothing_is_sent_before_send_at(project: Path, cli) -> None:
    add_subscribers(project, 5)
    configure(project)
    schedule(project)
    with SmtpServer() as server:
        result = due(cli, server, BEFORE)
        assert result.returncode == 0, result.stderr
        assert server.accepted == []


def test_due_issue_is_sent_once_and_later_runs_do_nothing(project: Path, cli) -> None:
    addresses = add_subscribers(project, 8)
    configure(project)
    schedule(project)
    with SmtpServer() as server:
        first = due(cli, server, ON_TIME)
        assert first.returncode == 0, first.stderr
        assert "2020-01: due since" in first.stderr
        assert received(server) == Counter(addresses)
        for later in (ON_TIME, LATE, "2020-03-01T00:00+00:00"):
            again = due(cli, server, later)
            assert again.returncode == 0, again.stderr
        assert received(server) == Counter(addresses)


def test_issue_without_send_at_is_never_sent_by_due(project: Path, cli) -> None:
    add_subscribers(project, 3)
    configure(project)
    with SmtpServer() as server:
        result = due(cli, server, LATE)
        assert result.returncode == 0, result.stderr
        assert server.accepted == []


def test_late_beyond_the_window_is_refused_unless_allowed(project: Path, cli) -> None:
    addresses = add_subscribers(project, 4)
    configure(project)
    schedule(project)
    with SmtpServer() as server:
        result = due(cli, server, LATE)
        assert result.returncode == 1
        assert "late (window 6 h); not started" in result.stderr
        assert server.accepted == []
        allowed = due(cli, server, LATE, "--allow-late")
        assert allowed.returncode == 0, allowed.stderr
        assert received(server) == Counter(addresses)


def test_an_interrupted_send_is_resumed_even_when_late(project: Path, cli) -> None:
    addresses = add_subscribers(project, 300)
    configure(project, connections=2)
    schedule(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    with SmtpServer(Behaviour(data_delay=0.01)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", "--due", "--now", ON_TIME,
             "--transport", f"smtp://127.0.0.1:{server.port}?tls=off"],
            cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.wait_for(lambda: len(server.accepted) >= 40)
        process.send_signal(signal.SIGKILL)
        process.wait()
        server.behaviour.data_delay = 0
        result = due(cli, server, LATE)  # hours later: a started send is still finished
        assert result.returncode in (0, 1), result.stderr
        unknown = {u["email"] for u in status(cli)["unknown"]}
        counts = received(server)
        for address in addresses:
            assert counts[address] in ((0, 1) if address in unknown else (1,)), address


def test_two_due_runs_started_together_send_each_message_once(project: Path, cli) -> None:
    addresses = add_subscribers(project, 150)
    configure(project)
    schedule(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    with SmtpServer(Behaviour(data_delay=0.002)) as server:
        command = [sys.executable, "-m", "newsletter", "send", "--due", "--now", ON_TIME,
                   "--transport", f"smtp://127.0.0.1:{server.port}?tls=off"]
        runs = [subprocess.Popen(command, cwd=project, env=env, text=True,
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
                for _ in range(2)]
        errors = [run.communicate(timeout=120)[1] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], errors
        assert received(server) == Counter(addresses)


def test_an_invalid_issue_at_send_at_is_not_sent_and_says_why(project: Path, cli) -> None:
    add_subscribers(project, 3)
    configure(project)
    schedule(project)
    text = (project / ISSUE).read_text().replace("    link:\n      url: https://efus.eu/en/"
                                                 "about-us/general-assembly/",
                                                 "    link:\n      url: efus.eu/x", 1)
    (project / ISSUE).write_text(text)
    with SmtpServer() as server:
        result = due(cli, server, ON_TIME)
        assert result.returncode == 1
        assert "expected an http(s) or mailto: URL, got 'efus.eu/x'" in result.stderr
        assert "Traceback" not in result.stderr
        assert server.accepted == []


def test_send_at_without_a_time_zone_is_refused(project: Path, cli) -> None:
    add_subscribers(project, 3)
    configure(project)
    schedule(project, send_at="2020-01-15T09:00")
    with SmtpServer() as server:
        result = due(cli, server, ON_TIME)
        assert result.returncode == 1
        assert "send_at: expected a time zone" in result.stderr
        assert server.accepted == []


def test_approval_required_and_content_changed_after_approval_is_refused(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 4)
    configure(project)
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text() + "\n[schedule]\nrequire_approval = true\n")
    schedule(project)
    with SmtpServer() as server:
        unapproved = due(cli, server, ON_TIME)
        assert unapproved.returncode == 1
        assert "not approved" in unapproved.stderr
        approved = cli("approve", str(ISSUE), "--by", "Anna")
        assert approved.returncode == 0, approved.stderr
        (project / ISSUE).write_text((project / ISSUE).read_text().replace(
            "Happy new year", "Happy New Year"))
        changed = due(cli, server, ON_TIME)
        assert changed.returncode == 1
        assert "changed after Anna approved it" in changed.stderr
        assert server.accepted == []
        assert cli("approve", str(ISSUE), "--by", "Anna").returncode == 0
        sent = due(cli, server, ON_TIME)
        assert sent.returncode == 0, sent.stderr
        assert received(server) == Counter(addresses)


def test_schedule_lists_upcoming_and_sent_issues(project: Path, cli) -> None:
    add_subscribers(project, 2)
    configure(project)
    schedule(project, send_at="2999-01-01T09:00+00:00")
    upcoming = cli("schedule")
    assert upcoming.returncode == 0, upcoming.stderr
    assert "2999-01-01 09:00 UTC  2020-01" in upcoming.stdout
    assert "upcoming" in upcoming.stdout


def test_log_file_receives_one_line_per_event(project: Path, cli) -> None:
    add_subscribers(project, 2)
    configure(project)
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text() + "\n[schedule]\nlog_file = \"newsletter.log\"\n")
    schedule(project)
    with SmtpServer() as server:
        assert due(cli, server, ON_TIME).returncode == 0
    lines = (project / "newsletter.log").read_text().splitlines()
    assert any("2020-01: due since" in line for line in lines)
