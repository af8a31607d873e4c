"""`newsletter bounces fetch` against a real Dovecot over TLS: what moves where, what is
recorded, and what a run killed between its commit and its move leaves behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import reports
import trustme
from conftest import run_cli
from imap_server import PASSWORD, USER, Dovecot, HoldingProxy, require_dovecot
from sends import RETURN_PATH, configure, original, record_send, status_of, subscribe
from smtp_server import SmtpServer

from newsletter.audience.store import SubscriberStore

ANA, BEN, CLEO = "ana@example.net", "ben@example.net", "cleo@example.net"
REVIEWER = "reviewer@example.org"
ENV = {"NEWSLETTER_IMAP_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def imap(ca: trustme.CA) -> Iterator[Dovecot]:
    require_dovecot()
    with Dovecot(ca) as server:
        yield server


@pytest.fixture
def mailbox(project: Path, imap: Dovecot, ca: trustme.CA) -> str:
    """The project, set up with its bounce mailbox; the mailbox URL."""
    ca.cert_pem.write_to_path(str(project / "imap-ca.pem"))
    url = f"imaps://{USER}@127.0.0.1:{imap.port}/INBOX?ca_file=imap-ca.pem"
    configure(project, imap=url)
    subscribe(project, ANA, BEN, CLEO)
    return url


def events(project: Path) -> int:
    with sqlite3.connect(project / "newsletter.db") as db:
        return db.execute("SELECT count(*) FROM delivery_events").fetchone()[0]


def test_fetch_records_reports_and_moves_each_message_where_it_belongs(
        project: Path, imap: Dovecot, mailbox: str) -> None:
    sent = record_send(project, "2020-01")
    ana, ben, cleo = sent[ANA], sent[BEN], sent[CLEO]
    imap.deliver(reports.exchange_ndr(original(ana), ANA, ana.return_path),
                 reports.yahoo_arf(original(ben), BEN, ben.return_path),
                 reports.auto_reply("exchange", cleo.return_path),
                 reports.plain_mail(RETURN_PATH))
    result = run_cli("bounces", "fetch", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "4 message(s): 2 event(s) recorded (1 complaint, 1 hard), 1 auto-reply, " \
           "1 not-a-report; moved 3 to Processed, 1 to Review" in result.stdout
    assert (status_of(project, ANA), status_of(project, BEN), status_of(project, CLEO)) \
        == ("bounced", "complained", "active")
    assert imap.messages("INBOX") == []
    assert len(imap.messages("Processed")) == 3
    assert imap.messages("Review") == [reports.plain_mail(RETURN_PATH)]

    again = run_cli("bounces", "fetch", cwd=project, env=ENV)
    assert again.returncode == 0 and "0 message(s)" in again.stdout


def test_a_run_killed_between_commit_and_move_counts_nothing_twice(
        project: Path, imap: Dovecot, mailbox: str, ca: trustme.CA) -> None:
    sent = record_send(project, "2020-01")
    imap.deliver(*(reports.postfix_dsn(original(sent[a]), a, sent[a].return_path,
                                       message_id=f"<dsn.{n}@mx.efus.eu>")
                   for n, a in enumerate((ANA, BEN))), reports.plain_mail(RETURN_PATH))
    with HoldingProxy(ca, imap.port) as proxy:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        through_proxy = mailbox.replace(f":{imap.port}/", f":{proxy.port}/")
        process = subprocess.Popen([sys.executable, "-m", "newsletter", "bounces", "fetch",
                                    "--mailbox", through_proxy], cwd=project,
                                   env={**env, **ENV}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            assert proxy.held.wait(60), process.communicate(timeout=5)
            # The events are committed, the MOVE has not reached the server: a second run
            # meanwhile is refused, and then the first one dies.
            second = run_cli("bounces", "fetch", cwd=project, env=ENV)
            assert second.returncode == 1
            assert "already running" in second.stderr and "bounce mailbox" in second.stderr
            assert events(project) == 2
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=20)
    assert len(imap.messages("INBOX")) == 3  # nothing moved, nothing lost
    assert status_of(project, ANA) == "bounced"

    rerun = run_cli("bounces", "fetch", cwd=project, env=ENV)
    assert rerun.returncode == 0, rerun.stderr
    assert "3 message(s): 0 event(s) recorded, 2 duplicate, 1 not-a-report" in rerun.stdout
    assert events(project) == 2
    assert imap.messages("INBOX") == [] and len(imap.messages("Processed")) == 2


def test_an_untrusted_certificate_stops_before_the_password_is_sent(
        project: Path, imap: Dovecot, mailbox: str) -> None:
    imap.deliver(reports.plain_mail(RETURN_PATH))
    result = run_cli("bounces", "fetch", "--mailbox",
                     f"imaps://{USER}@127.0.0.1:{imap.port}/INBOX", cwd=project, env=ENV)
    assert result.returncode == 1
    assert "TLS certificate not trusted" in result.stderr and "Traceback" not in result.stderr
    assert len(imap.messages("INBOX")) == 1


def test_a_refused_login_names_the_user_and_never_the_password(
        project: Path, imap: Dovecot, mailbox: str) -> None:
    result = run_cli("bounces", "fetch", cwd=project,
                     env={"NEWSLETTER_IMAP_PASSWORD": "wrong-password-123"})
    assert result.returncode == 1
    assert f"refused the login of '{USER}'" in result.stderr
    assert "wrong-password-123" not in result.stderr + result.stdout


def test_the_password_only_comes_from_the_environment(project: Path, mailbox: str) -> None:
    missing = run_cli("bounces", "fetch", cwd=project)
    assert missing.returncode == 1 and "NEWSLETTER_IMAP_PASSWORD" in missing.stderr
    in_url = run_cli("bounces", "fetch", "--mailbox", "imaps://bounces:pw@127.0.0.1/INBOX",
                     cwd=project, env=ENV)
    assert in_url.returncode == 1 and "do not put the password in the URL" in in_url.stderr


def test_a_huge_message_is_moved_whole_after_reading_only_its_start(
        project: Path, imap: Dovecot, mailbox: str) -> None:
    huge = reports.plain_mail(RETURN_PATH) + b"0123456789" * 800_000 + b"\r\n"
    imap.deliver(huge)
    result = run_cli("bounces", "fetch", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    assert imap.messages("Review") == [huge]


def test_unsubscribe_requests_in_the_mailbox_are_honoured_and_a_test_messages_is_not(
        project: Path, imap: Dovecot, mailbox: str) -> None:
    with SmtpServer() as server:
        transport = f"smtp://127.0.0.1:{server.port}?tls=off"
        for args in (("--list", "members", "--yes"), ("--test", "--to", REVIEWER)):
            result = run_cli("send", "issues/2020-01.yaml", *args, "--transport", transport,
                             cwd=project)
            assert result.returncode == 0, result.stderr
        ana = next(m.data for m in server.accepted if m.rcpt_tos == [ANA])
        test_copy = next(m.data for m in server.accepted if m.rcpt_tos == [REVIEWER])
    imap.deliver(reports.mailto_request(ana), reports.mailto_request(test_copy, REVIEWER))
    result = run_cli("bounces", "fetch", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "2 message(s): 0 event(s) recorded, 1 unsubscribed, 1 ignored; moved 2 to " \
           "Processed" in result.stdout
    assert memberships(project, ANA) == {"members": "unsubscribed"}
    assert [memberships(project, a) for a in (BEN, CLEO)] == [{"members": "active"}] * 2
    assert imap.messages("INBOX") == [] and len(imap.messages("Processed")) == 2


def memberships(project: Path, address: str) -> dict[str, str]:
    with SubscriberStore(project / "newsletter.db") as store:
        found = store.get(address)
        assert found is not None
        return {m.list_name: m.status for m in store.memberships(found.id)}
