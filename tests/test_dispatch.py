"""Bulk sends against real SMTP servers that misbehave on purpose.

Every test compares the server's own log of accepted messages with what the ledger and
`newsletter status` claim: each subscriber exactly once, except recipients reported
unknown, who are never silently re-sent.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from smtp_server import Behaviour, SmtpServer

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.compose.issue import load_issue
from newsletter.compose.render import compose
from newsletter.config import load_settings
from newsletter.delivery.campaign import Campaign
from newsletter.envelope import Personalised
from newsletter.transports import Result
from newsletter.transports.memory import MemoryTransport

ISSUE = "issues/2020-01.yaml"


def add_subscribers(project: Path, count: int, list_name: str = "members",
                    start: int = 0) -> list[str]:
    addresses = [f"reader{n}@example.org" for n in range(start, start + count)]
    rows = [NewRow(n + 1, a, address_key(a), f"Reader {n}", {"city": "Riga"})
            for n, a in enumerate(addresses)]
    with SubscriberStore(project / "newsletter.db") as store:
        store.merge(rows, list_name)
    return addresses


def configure(project: Path, **send: object) -> None:
    """Fast retries for tests, plus any [send] settings given."""
    values = {"retry_base": "0.1s", "retry_max_wait": "20s", "connections": 2,
              "timeout": "5s", **send}
    text = (project / "newsletter.toml").read_text()
    head, _, _ = text.partition("[send]")
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    (project / "newsletter.toml").write_text(head + "[send]\ndatabase = \"newsletter.db\"\n"
                                             + "\n".join(lines) + "\n")


def smtp_url(server: SmtpServer) -> str:
    return f"smtp://127.0.0.1:{server.port}?tls=off"


def send(cli, server: SmtpServer, *extra: str):  # type: ignore[no-untyped-def]
    return cli("send", ISSUE, "--list", "members", "--yes", "--transport", smtp_url(server),
               *extra)


def status(cli) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = cli("status", ISSUE, "--json", "--limit", "100000")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def received(server: SmtpServer) -> Counter[str]:
    return Counter(server.recipients())


def test_every_subscriber_gets_exactly_one_personal_message(project: Path, cli) -> None:
    addresses = add_subscribers(project, 60)
    configure(project, connections=4)
    with SmtpServer() as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(addresses)
        for accepted in server.accepted:
            message = email.message_from_bytes(accepted.data, policy=email.policy.default)
            number = accepted.rcpt_tos[0].removeprefix("reader").split("@")[0]
            assert message["To"].addresses[0].display_name == f"Reader {number}"
            assert f"Dear Reader {number}," in message.get_body(("plain",)).get_content()
        again = send(cli, server)
        assert again.returncode == 0, again.stderr
        assert received(server) == Counter(addresses), "a second run must send nothing"
    assert status(cli)["counts"] == {"sent": 60}


def test_450_defers_recipients_and_delivers_them_on_retry(project: Path, cli) -> None:
    addresses = add_subscribers(project, 30)
    configure(project)
    busy = {a: "450 4.2.1 Mailbox busy, try later" for a in addresses[::5]}
    with SmtpServer(Behaviour(rcpt_replies=busy, rcpt_reply_times=2)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(addresses)
        assert all(server.rcpt_refusals[a] == 2 for a in busy)
    assert status(cli)["counts"] == {"sent": 30}


def test_550_fails_and_suppresses_those_and_delivers_the_rest(project: Path, cli) -> None:
    addresses = add_subscribers(project, 30)
    configure(project)
    dead = {a: "550 5.1.1 No such mailbox" for a in addresses[3:6]}
    with SmtpServer(Behaviour(rcpt_replies=dead)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(a for a in addresses if a not in dead)
        report = status(cli)
        assert report["counts"] == {"sent": 27, "failed": 3}
        assert {f["email"]: f["reply"] for f in report["failed"]} == dead
        with SubscriberStore(project / "newsletter.db") as store:
            assert all(store.get(a).status == "bounced" for a in dead)  # type: ignore[union-attr]
        assert send(cli, server).returncode == 0
        assert received(server) == Counter(a for a in addresses if a not in dead)


def test_421_mid_run_slows_down_and_loses_nobody(project: Path, cli) -> None:
    addresses = add_subscribers(project, 40)
    configure(project)
    with SmtpServer(Behaviour(reply_421_after=15)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert server.sent_421
        assert received(server) == Counter(addresses)
        assert "throttled by the server" in result.stderr
    assert status(cli)["counts"] == {"sent": 40}


def test_connection_closed_between_messages_reconnects_and_loses_nobody(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 40)
    configure(project)
    with SmtpServer(Behaviour(close_every=7)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(addresses)
        assert server.connections > 2
    assert status(cli)["counts"] == {"sent": 40}


def test_connection_lost_after_data_makes_recipients_unknown_until_asked(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 30)
    configure(project, connections=1)
    with SmtpServer(Behaviour(close_after_data=lambda count: count in (5, 12))) as server:
        first = send(cli, server)
        assert first.returncode == 1
        assert "unknown" in first.stderr
        lost = [server.accepted[5].rcpt_tos[0], server.accepted[12].rcpt_tos[0]]
        report = status(cli)
        assert sorted(u["email"] for u in report["unknown"]) == sorted(lost)
        assert report["counts"] == {"sent": 28, "unknown": 2}
        assert received(server) == Counter(addresses)

        rerun = send(cli, server)  # a plain re-run leaves unknown recipients alone
        assert rerun.returncode == 1
        assert "2 recipient(s) with an unknown outcome" in rerun.stderr
        assert received(server) == Counter(addresses)

        ids_before = {m.rcpt_tos[0]: _message_id(m.data) for m in server.accepted}
        server.behaviour.close_after_data = None
        resend = send(cli, server, "--resend-unknown")
        assert resend.returncode == 0, resend.stderr
        assert received(server) == Counter(addresses) + Counter(lost)
        for accepted in server.accepted[-2:]:
            assert _message_id(accepted.data) == ids_before[accepted.rcpt_tos[0]]
    assert status(cli)["counts"] == {"sent": 30}


def _message_id(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.default)["Message-ID"]


def test_slow_server_times_out_without_waiting_forever(project: Path, cli) -> None:
    addresses = add_subscribers(project, 10)
    configure(project, connections=1, timeout="1s")
    slow = addresses[4]
    with SmtpServer(Behaviour(data_delay=3.0, slow_recipients={slow})) as server:
        result = send(cli, server)
        assert result.returncode == 1
        report = status(cli)
        assert [u["email"] for u in report["unknown"]] == [slow]
        assert "timed out" in report["unknown"][0]["reply"]
        assert report["counts"] == {"sent": 9, "unknown": 1}


def test_consecutive_temporary_failures_pause_the_run(project: Path, cli) -> None:
    addresses = add_subscribers(project, 20)
    configure(project, max_consecutive_errors=5, connections=1)
    down = {a: "451 4.3.0 Local problem, try later" for a in addresses}
    with SmtpServer(Behaviour(rcpt_replies=down)) as server:
        result = send(cli, server)
        assert result.returncode == 1
        assert "paused after 5 temporary failures in a row" in result.stderr
        assert "to resume" in result.stderr
        assert "Traceback" not in result.stderr
        server.behaviour.rcpt_replies = {}
        resumed = send(cli, server)
        assert resumed.returncode == 0, resumed.stderr
        assert received(server) == Counter(addresses)


def test_a_delivery_between_temporary_failures_ends_the_streak(project: Path, cli) -> None:
    addresses = add_subscribers(project, 20)
    configure(project, max_consecutive_errors=2, connections=1)
    busy = {a: "451 4.3.0 Try again later" for a in addresses[::2]}  # every other one
    with SmtpServer(Behaviour(rcpt_replies=busy, rcpt_reply_times=1)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr  # ten failures, never two in a row
        assert "paused" not in result.stderr
        assert received(server) == Counter(addresses)


def test_a_subscriber_on_two_lists_gets_one_message(project: Path, cli) -> None:
    members = add_subscribers(project, 10)
    partners = add_subscribers(project, 10, "partners", start=5)
    configure(project)
    with SmtpServer() as server:
        result = cli("send", ISSUE, "--list", "members", "--list", "partners", "--yes",
                     "--transport", smtp_url(server))
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(set(members) | set(partners))


def test_new_subscribers_join_a_started_send_only_with_include_new(project: Path, cli) -> None:
    first = add_subscribers(project, 5)
    configure(project)
    with SmtpServer() as server:
        assert send(cli, server).returncode == 0
        later = add_subscribers(project, 3, start=100)
        assert send(cli, server).returncode == 0
        assert received(server) == Counter(first)
        assert send(cli, server, "--include-new").returncode == 0
        assert received(server) == Counter(first + later)


def test_without_a_terminal_a_send_needs_yes(project: Path, cli) -> None:
    add_subscribers(project, 3)
    configure(project)
    with SmtpServer() as server:
        result = cli("send", ISSUE, "--list", "members", "--transport", smtp_url(server))
        assert result.returncode == 1
        assert "3 recipient(s) to send" in result.stderr
        assert "--yes" in result.stderr
        assert server.accepted == []


def test_dry_run_builds_every_message_and_records_nothing(project: Path, cli) -> None:
    add_subscribers(project, 12)
    configure(project)
    with SmtpServer() as server:
        result = cli("send", ISSUE, "--list", "members", "--dry-run", "--transport",
                     smtp_url(server))
        assert result.returncode == 0, result.stderr
        assert "12 messages built" in result.stdout
        assert server.accepted == []
    assert cli("status", ISSUE).stdout.strip() == "2020-01: never sent to a list"


def _popen_send(project: Path, server: SmtpServer) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", ISSUE, "--list", "members", "--yes",
         "--transport", smtp_url(server)], cwd=project, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_killed_mid_run_the_next_run_sends_to_everyone_else_exactly_once(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 600)
    configure(project, connections=4)
    with SmtpServer(Behaviour(data_delay=0.005)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 200)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert 200 <= len(server.accepted) < 600
        result = send(cli, server)
        report = status(cli)
        unknown = {u["email"] for u in report["unknown"]}
        assert len(unknown) <= 4, "at most one message in flight per connection"
        counts = received(server)
        for address in addresses:
            expected = (0, 1) if address in unknown else (1,)
            assert counts[address] in expected, address
        assert sum(counts.values()) == len(server.accepted)
        assert report["counts"].get("sent", 0) + len(unknown) == 600
        assert result.returncode == (1 if unknown else 0), result.stderr


def test_two_sends_started_together_send_each_message_once(project: Path, cli) -> None:
    addresses = add_subscribers(project, 200)
    configure(project)
    with SmtpServer(Behaviour(data_delay=0.002)) as server:
        first, second = _popen_send(project, server), _popen_send(project, server)
        outputs = [p.communicate(timeout=120) for p in (first, second)]
        codes = sorted(p.returncode for p in (first, second))
        assert received(server) == Counter(addresses)
        assert codes[0] == 0
        if codes[1] != 0:
            assert any("already running (pid" in err for _, err in outputs)


def test_sigterm_stops_cleanly_and_the_same_command_resumes(project: Path, cli) -> None:
    addresses = add_subscribers(project, 300)
    configure(project, connections=2)
    with SmtpServer(Behaviour(data_delay=0.01)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 30)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143
        assert "to resume: newsletter send issues/2020-01.yaml --list members" in err
        partial = received(server)
        assert all(n == 1 for n in partial.values())
        report = status(cli)
        assert report["state"] == "interrupted"
        assert report["counts"].get("unknown", 0) == 0, "in-flight messages were finished"
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(addresses)


def test_a_second_send_of_a_running_issue_exits_at_once(project: Path, cli) -> None:
    add_subscribers(project, 200)
    configure(project, connections=1)
    with SmtpServer(Behaviour(data_delay=0.02)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 5)
        second = send(cli, server)
        process.kill()
        process.wait()
        assert second.returncode == 1
        assert f"already running (pid {process.pid})" in second.stderr


@pytest.mark.parametrize("connections", [1, 4])
def test_unsubscribed_during_a_send_is_skipped(project: Path, cli, connections: int) -> None:
    addresses = add_subscribers(project, 300)
    configure(project, connections=connections)
    late = addresses[-20:]
    with SmtpServer(Behaviour(data_delay=0.005)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 20)
        with SubscriberStore(project / "newsletter.db") as store:
            for address in late:
                store.unsubscribe(address, "members", reason="one-click")
        process.communicate(timeout=120)
        assert process.returncode == 0
        assert not set(late) & set(server.recipients())
        report = status(cli)
        assert report["counts"] == {"sent": 280, "skipped": 20}


def test_421_on_a_reused_connection_slows_the_whole_run(project: Path, cli) -> None:
    addresses = add_subscribers(project, 60)
    configure(project, connections=2, rate_per_second=40)
    with SmtpServer(Behaviour(mail_421_after=10)) as server:
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert len(server.refused_421) == 1
        assert received(server) == Counter(addresses)  # the refused one went again, once
        match = re.search(r"throttled by the server \(421 [^)]*\); slowing to ([\d.]+)/s",
                          result.stderr)
        assert match and float(match[1]) < 40, result.stderr
        # Every connection paused for a second (at 40/s, messages are 25 ms apart).
        after = sorted(m.at for m in server.accepted if m.at > server.refused_421[0])
        assert max(b - a for a, b in zip(after, after[1:], strict=False)) >= 0.7
    assert status(cli)["counts"] == {"sent": 60}


def _hold_database(database: Path) -> subprocess.Popen[str]:
    """Another program (a backup, an sqlite3 shell) holding the database: BEGIN EXCLUSIVE
    until a line arrives on its stdin."""
    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
              "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.readline(); "
              "c.execute('ROLLBACK')")
    holder = subprocess.Popen([sys.executable, "-c", script, str(database)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_database_locked_by_another_program_stops_the_send_cleanly_and_loses_nothing(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 300)
    configure(project, connections=2, busy_timeout="1.5s")
    with SmtpServer(Behaviour(data_delay=0.01)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 30)
        holder = _hold_database(project / "newsletter.db")
        assert process.stderr is not None
        lines = []
        while "stopping:" not in (line := process.stderr.readline()):
            assert line, "".join(lines)  # the run ended without announcing it
            lines.append(line)
        holder.communicate("done\n")  # the other program lets go of the database
        rest = process.communicate(timeout=60)[1]
        err = "".join(lines) + line + rest
        assert process.returncode == 1, err
        assert "Traceback" not in err
        assert "newsletter.db: the database stayed locked by another program for more than " \
               "1.5 s" in err
        assert "nothing was lost" in err
        assert "to resume: newsletter send issues/2020-01.yaml --list members" in err
        report = status(cli)
        assert report["state"] == "interrupted"
        sent_so_far = received(server)
        assert all(n == 1 for n in sent_so_far.values())
        assert report["counts"].get("sent") == len(sent_so_far)  # every verdict was kept
        assert "unknown" not in report["counts"]
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert received(server) == Counter(addresses)
    assert status(cli)["counts"] == {"sent": 300}


def test_the_printed_resume_command_keeps_the_transport_and_another_route_is_refused(
        project: Path, cli) -> None:
    addresses = add_subscribers(project, 300)
    configure(project, connections=2)
    with SmtpServer(Behaviour(data_delay=0.01)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 30)
        process.send_signal(signal.SIGTERM)
        err = process.communicate(timeout=60)[1]
        assert process.returncode == 143
        printed = err.rpartition("to resume: ")[2].strip()
        assert f"--transport 'smtp://127.0.0.1:{server.port}?tls=off'" in printed

        # The same command without --transport would take the default outbox: refused.
        plain = cli("send", ISSUE, "--list", "members", "--yes")
        assert plain.returncode == 1
        assert f"was being sent through smtp://127.0.0.1:{server.port}?tls=off, and this " \
               "run would send the rest through outbox://outbox" in plain.stderr
        assert not (project / "outbox").exists()

        pasted = cli(*shlex.split(printed)[1:])  # as the user would paste it
        assert pasted.returncode == 0, pasted.stderr
        assert received(server) == Counter(addresses)
    report = status(cli)
    assert report["counts"] == {"sent": 300}
    assert report["transport"] == f"smtp://127.0.0.1:{server.port}?tls=off"


def test_a_route_changes_only_when_transport_is_given(project: Path, cli) -> None:
    addresses = add_subscribers(project, 40)
    configure(project, connections=1, max_consecutive_errors=3)
    down = {a: "451 4.3.0 Try again later" for a in addresses}
    with SmtpServer(Behaviour(rcpt_replies=down)) as first, SmtpServer() as second:
        assert send(cli, first).returncode == 1  # paused: the first relay is down
        moved = send(cli, second)
        assert moved.returncode == 0, moved.stderr
        assert f"no longer through smtp://127.0.0.1:{first.port}?tls=off" in moved.stderr
        assert first.accepted == [] and received(second) == Counter(addresses)


def test_the_resume_banner_counts_what_a_killed_run_really_left(project: Path, cli) -> None:
    add_subscribers(project, 300)
    configure(project, connections=2)
    with SmtpServer(Behaviour(data_delay=0.005)) as server:
        process = _popen_send(project, server)
        _wait_for(lambda: len(server.accepted) >= 100)
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = len(server.accepted)
        result = send(cli, server)
        banner = re.search(r"Resume 2020-01 .*: (\d+) recipient\(s\) to send, (\d+) already "
                           r"done(?:, (\d+) unknown)?", result.stderr)
        assert banner, result.stderr
        to_send, done, unknown = (int(n or 0) for n in banner.groups())
        assert to_send == len(server.accepted) - before  # what this run really sent
        assert (done, unknown) == (status(cli)["counts"]["sent"] - to_send,
                                   status(cli)["counts"].get("unknown", 0))
        assert to_send + done + unknown == 300


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_leaves_every_recipient_untried(project: Path, cli) -> None:
    addresses = add_subscribers(project, 30)
    configure(project, connections=2)
    with SmtpServer(credentials=("editor", "the-right-one")) as server:
        url = f"smtp://editor@127.0.0.1:{server.port}?tls=off"
        args = ("send", ISSUE, "--list", "members", "--yes", "--transport", url)
        refused = cli(*args, env={"NEWSLETTER_SMTP_PASSWORD": "a-wrong-one"})
        assert refused.returncode == 1
        assert "refused the login of 'editor'" in refused.stderr
        with sqlite3.connect(project / "newsletter.db") as db:
            assert db.execute("SELECT state, max(attempts) FROM deliveries GROUP BY state"
                              ).fetchall() == [("pending", 0)]
        again = cli(*args, env={"NEWSLETTER_SMTP_PASSWORD": "the-right-one"})
        assert again.returncode == 0, again.stderr
        assert received(server) == Counter(addresses)
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT max(attempts) FROM deliveries").fetchone() == (1,)


def test_a_list_with_nobody_to_mail_says_why_and_records_nothing(project: Path, cli) -> None:
    addresses = add_subscribers(project, 3)
    with SubscriberStore(project / "newsletter.db") as store:
        for address in addresses[:2]:
            store.unsubscribe(address, "members")
        store.mark_bounced(addresses[2], "550 no such user")
    configure(project)
    with SmtpServer() as server:
        result = send(cli, server)
        assert result.returncode == 1
        assert "nobody to send 2020-01 to: members has no active subscriber (2 unsubscribed, " \
               "1 bounced); nothing was sent or recorded" in result.stderr
        assert cli("status", ISSUE).stdout.strip() == "2020-01: never sent to a list"
        later = add_subscribers(project, 2, start=10)  # the list gets members: a fresh send
        assert send(cli, server).returncode == 0
        assert received(server) == Counter(later)


def test_a_run_with_nobody_left_says_who_joined_since_and_how_to_add_them(
        project: Path, cli) -> None:
    add_subscribers(project, 5)
    configure(project)
    with SmtpServer() as server:
        assert send(cli, server).returncode == 0
        add_subscribers(project, 3, start=100)
        result = send(cli, server)
        assert result.returncode == 0, result.stderr
        assert "nothing left to send: 5 recipient(s) of this send are done; 3 subscriber(s) " \
               "joined members after this send started: add --include-new" in result.stdout
        assert len(server.accepted) == 5


def test_a_transport_failing_outside_its_contract_leaves_a_ledger_a_rerun_completes(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a transport (an exception no transport may raise) stops the run; the batch
    in hand is `unknown` (it may have left), the rest pending, nothing stuck `sending`."""
    add_subscribers(project, 30)
    configure(project, connections=1, batch_size=5)
    settings = load_settings(project / "newsletter.toml",
                             env={"NEWSLETTER_SECRET": "a-secret-for-the-dispatch-tests"})
    composed = compose(load_issue(project / ISSUE, ISSUE), settings)
    kept: list[str] = []
    calls = Counter[str]()
    working = MemoryTransport.send

    def buggy(self: MemoryTransport, batch: list[Personalised]) -> list[Result]:
        calls["send"] += 1
        if calls["send"] == 3:
            raise KeyError("a bug")
        kept.extend(m.recipient.email for m in batch)
        return working(self, batch)

    def run(**options: bool):  # type: ignore[no-untyped-def]
        with Campaign(composed, settings, ["members"], transport_url="memory://") as campaign:
            return campaign.run(threading.Event(), on_start=lambda start: None,
                                on_event=lambda text: None, **options)

    monkeypatch.setattr(MemoryTransport, "send", buggy)
    with pytest.raises(KeyError):
        run()
    states = {e["email"]: e for e in status_rows(project)}
    assert Counter(e["state"] for e in states.values()) == {"sent": 10, "unknown": 5,
                                                            "pending": 15}
    assert {a for a, e in states.items() if e["state"] == "sent"} == set(kept)
    assert all("the transport failed unexpectedly (KeyError" in e["reply"]
               for e in states.values() if e["state"] == "unknown")
    assert status(cli)["state"] == "failed"

    assert run().counts == {"sent": 25, "unknown": 5}  # only the third call failed
    assert run(resend_unknown=True).counts == {"sent": 30}
    assert Counter(kept) == Counter(set(states))  # each once


def status_rows(project: Path) -> list[dict[str, str]]:
    """Every recipient of the send with its state and reply, from the database itself."""
    with sqlite3.connect(project / "newsletter.db") as db:
        return [{"email": e, "state": s, "reply": r} for e, s, r in
                db.execute("SELECT email, state, reply FROM deliveries")]
