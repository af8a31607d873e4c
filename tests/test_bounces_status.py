"""`newsletter status` shows what came back after a send, with the rates Gmail judges by."""

from __future__ import annotations

import json
from pathlib import Path

import reports
from sends import configure, original, record_send, settings_of, subscribe

from newsletter.inbound.intake import Intake
from newsletter.inbound.parse import parse_message
from newsletter.states import EventSource


def report_all(project: Path, data: list[bytes]) -> None:
    with Intake(settings_of(project)) as intake:
        for message in data:
            intake.record(parse_message(message, EventSource.IMAP))


def test_status_counts_bounces_blocks_and_complaints_and_warns_at_gmails_thresholds(
        project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    configure(project)
    addresses = [f"reader{n:04d}@example.net" for n in range(1000)]
    subscribe(project, *addresses)
    sent = record_send(project, "2020-01")
    messages = []
    for n, address in enumerate(addresses[:20]):
        one = sent[address]
        if n < 10:
            messages.append(reports.postfix_dsn(original(one), address, one.return_path))
        elif n < 15:
            messages.append(reports.postfix_dsn(original(one), address, one.return_path,
                                                status="5.2.2",
                                                diagnostic="smtp; 552 5.2.2 Mailbox full"))
        elif n < 18:
            messages.append(reports.gmail_dsn(original(one), address, one.return_path,
                                              status="5.7.1", lines=("550 5.7.1 spam",)))
        else:
            messages.append(reports.yahoo_arf(original(one), address, one.return_path))
    report_all(project, messages)

    shown = cli("status", "issues/2020-01.yaml")
    assert shown.returncode == 0, shown.stderr
    assert ("after sending: 982 delivered, 15 bounced (10 hard, 5 soft), 3 blocked, "
            "2 complained; bounce rate 1.5%, complaint rate 0.20%") in shown.stdout
    assert "warning: complaint rate 0.20% is above the 0.1% Gmail asks" in shown.stdout
    assert "warning: 3 message(s) blocked by the receiving servers' policy" in shown.stdout
    assert "bounce rate 1.5% is" not in shown.stdout

    third = sent[addresses[20]]
    report_all(project, [reports.yahoo_arf(original(third), addresses[20], third.return_path)])
    data = json.loads(cli("status", "issues/2020-01.yaml", "--json").stdout)["returns"]
    assert (data["delivered"], data["bounced_hard"], data["bounced_soft"], data["blocked"],
            data["complained"]) == (982, 10, 5, 3, 3)
    assert round(data["complaint_rate"], 5) == round(3 / 982, 5)
    assert any("at or above Gmail's limit of 0.3%" in w for w in data["warnings"])


def test_a_bounce_rate_of_2_percent_is_a_warning(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    configure(project)
    addresses = [f"reader{n:02d}@example.net" for n in range(50)]
    subscribe(project, *addresses)
    sent = record_send(project, "2020-01")
    one = sent[addresses[0]]
    report_all(project, [reports.postfix_dsn(original(one), addresses[0], one.return_path)])
    shown = cli("status", "issues/2020-01.yaml")
    assert "warning: bounce rate 2.0% is 2% or more" in shown.stdout
