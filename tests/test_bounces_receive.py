"""`newsletter bounces receive` as a mail server's pipe runs it: exit codes, what is kept,
and the whole loop from a send through SMTP to the next issue."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path

import reports
from conftest import run_cli
from sends import RETURN_PATH, configure, original, record_send, signer, status_of, subscribe
from smtp_server import SmtpServer

from newsletter.audience.store import SubscriberStore

ANA, BEN = "ana@example.net", "ben@example.net"
SECOND_ISSUE = """\
date: 2020-02-07
subject: "Efus Newsletter – February 2020"
items:
  - title: "Efus General Assembly 2020 in Riga"
    body: The General Assembly will be held on **26-27 March** in Riga.
"""


# The command as a process that reports its own peak memory when it ends.
# (VmHWM: the peak resident set of this program image, not of the parent that forked it.)
MEASURED = ("import re, sys\nfrom newsletter.cli import main\ntry:\n    main()\nfinally:\n"
            "    status = open('/proc/self/status').read()\n"
            "    print('peak_kib=' + re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)")


def receive(project: Path, data: bytes, *args: str,
            python: str = "") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    command = ["-c", python] if python else ["-m", "newsletter"]
    return subprocess.run([sys.executable, *command, "bounces", "receive", *args],
                          cwd=project, env=env, input=data, capture_output=True, timeout=60)


def kept(project: Path) -> dict[str, int]:
    folder = project / "bounces"
    return {sub.name: len(list(sub.glob("*.eml"))) for sub in folder.iterdir()
            if sub.is_dir() and sub.name != "tmp"} if folder.exists() else {}


def test_a_dsn_on_stdin_is_recorded_and_exits_0(project: Path) -> None:
    configure(project)
    subscribe(project, ANA, BEN)
    ana = record_send(project, "2020-01")[ANA]
    result = receive(project, reports.postfix_dsn(original(ana), ANA, ana.return_path))
    assert result.returncode == 0, result.stderr
    assert b"recorded: hard 5.1.1 for ana@example.net (2020-01" in result.stdout
    assert status_of(project, ANA) == "bounced"
    again = receive(project, reports.postfix_dsn(original(ana), ANA, ana.return_path))
    assert again.returncode == 0 and b"duplicate" in again.stdout
    assert kept(project) == {}  # recorded: nothing left for a person


def test_mail_that_is_not_a_report_is_kept_for_a_person_and_exits_0(project: Path) -> None:
    configure(project)
    subscribe(project, ANA)
    ana = record_send(project, "2020-01")[ANA]
    letter = reports.plain_mail(RETURN_PATH)
    for data in (letter, reports.auto_reply("rfc3834", ana.return_path),
                 reports.postfix_dsn(b"Message-ID: <other@example.com>\r\n\r\n", ANA,
                                     "bounces+1.1.aaaaaaaaaaaaa@news.efus.eu")):
        result = receive(project, data)
        assert result.returncode == 0, result.stderr
        assert b"kept for a person to read: bounces/" in result.stdout
    assert kept(project) == {"not-a-report": 1, "auto-reply": 1, "unmatched": 1}
    path = next((project / "bounces/not-a-report").glob("*.eml"))
    assert path.read_bytes() == letter
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert status_of(project, ANA) == "active"


def test_an_unusable_database_exits_75_so_the_mail_server_retries(project: Path) -> None:
    configure(project)
    (project / "newsletter.db").write_bytes(b"this is not a database" * 100)
    result = receive(project, reports.plain_mail(RETURN_PATH))
    assert result.returncode == 75
    assert b"Traceback" not in result.stderr
    assert b"exit status 75 asks the mail server to deliver it again" in result.stderr
    assert kept(project) == {}  # the mail server still has it


def test_a_broken_configuration_exits_75_too(project: Path) -> None:
    with open(project / "newsletter.toml", "a", encoding="utf-8") as toml:
        toml.write('\n[bounces]\nreturn_path = "bounces+x@news.efus.eu"\n')
    result = receive(project, reports.plain_mail(RETURN_PATH))
    assert result.returncode == 75 and b"return_path" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_huge_mail_is_kept_whole_in_bounded_memory(project: Path) -> None:
    configure(project)
    subscribe(project, ANA)
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem\r\n"
    huge = reports.plain_mail(RETURN_PATH) + line * (60 * 1024 * 1024 // len(line))
    result = receive(project, huge, python=MEASURED)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    peak_mib = int(result.stderr.decode().rsplit("peak_kib=", 1)[1]) / 1024
    assert peak_mib < 50  # the message is 60 MB
    path = next((project / "bounces/not-a-report").glob("*.eml"))
    assert path.stat().st_size == len(huge)


def test_bounce_after_an_smtp_send_keeps_the_address_out_of_the_next_issue(
        project: Path) -> None:
    """Send through SMTP with a return path, pipe the DSN in, send the next issue."""
    configure(project)
    subscribe(project, ANA, BEN, "cleo@example.net")
    with SmtpServer() as server:
        transport = f"smtp://127.0.0.1:{server.port}?tls=off"
        first = run_cli("send", "issues/2020-01.yaml", "--list", "members", "--yes",
                        "--transport", transport, cwd=project)
        assert first.returncode == 0, first.stderr
        by_recipient = {m.rcpt_tos[0]: m for m in server.accepted}
        assert sorted(by_recipient) == [ANA, BEN, "cleo@example.net"]
        ben = by_recipient[BEN]
        assert ben.mail_from.startswith("bounces+") and ben.mail_from.endswith("@news.efus.eu")
        token = ben.mail_from[len("bounces+"):].partition("@")[0]
        assert signer(project).verify_delivery(token) is not None
        message = email.message_from_bytes(ben.data, policy=email.policy.default)
        assert message["From"].addresses[0].addr_spec == "newsletter@efus.eu"  # From unchanged

        dsn = reports.postfix_dsn(ben.data, BEN, ben.mail_from)
        result = receive(project, dsn, "--recipient", ben.mail_from)
        assert result.returncode == 0, result.stderr
        assert status_of(project, BEN) == "bounced"

        (project / "issues/2020-02.yaml").write_text(SECOND_ISSUE, encoding="utf-8")
        server.accepted.clear()
        second = run_cli("send", "issues/2020-02.yaml", "--list", "members", "--yes",
                         "--transport", transport, cwd=project)
        assert second.returncode == 0, second.stderr
        assert sorted(server.recipients()) == [ANA, "cleo@example.net"]
    shown = run_cli("subscribers", "show", BEN, cwd=project)
    assert "bounced" in shown.stdout and "hard 5.1.1" in shown.stdout and "2020-01" in shown.stdout


def test_test_sends_keep_the_sender_as_their_envelope_sender(project: Path) -> None:
    configure(project)
    with SmtpServer() as server:
        result = run_cli("send", "issues/2020-01.yaml", "--test", "--transport",
                         f"smtp://127.0.0.1:{server.port}?tls=off", cwd=project)
        assert result.returncode == 0, result.stderr
        assert [m.mail_from for m in server.accepted] == ["newsletter@efus.eu"]


def memberships(project: Path, address: str) -> dict[str, str]:
    with SubscriberStore(project / "newsletter.db") as store:
        found = store.get(address)
        assert found is not None
        return {m.list_name: m.status for m in store.memberships(found.id)}


def test_a_mail_to_the_mailto_address_unsubscribes_the_tokens_address_from_its_list(
        project: Path) -> None:
    configure(project)
    subscribe(project, ANA, BEN)
    subscribe(project, ANA, list_name="partners")
    with SmtpServer() as server:
        sent = run_cli("send", "issues/2020-01.yaml", "--list", "members", "--yes",
                       "--transport", f"smtp://127.0.0.1:{server.port}?tls=off", cwd=project)
        assert sent.returncode == 0, sent.stderr
        ana = next(m.data for m in server.accepted if m.rcpt_tos == [ANA])
    request = reports.mailto_request(ana, sender=BEN)  # whoever writes, the token decides
    assert b"To: <unsubscribe@efus.eu>" in request and b"Subject: unsubscribe " in request
    result = receive(project, request)
    assert result.returncode == 0, result.stderr
    assert b"unsubscribed: unsubscribe request by mail" in result.stdout
    assert memberships(project, ANA) == {"members": "unsubscribed", "partners": "active"}
    assert memberships(project, BEN) == {"members": "active"}
    assert kept(project) == {}  # honoured: nothing left for a person
    again = receive(project, request)
    assert again.returncode == 0 and memberships(project, ANA)["members"] == "unsubscribed"

    forged = request.replace(b"Subject: unsubscribe ", b"Subject: unsubscribe x")
    assert receive(project, forged).returncode == 0
    assert kept(project) == {"unmatched": 1}
    assert memberships(project, BEN) == {"members": "active"}
