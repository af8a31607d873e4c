"""What a report changes: hard bounces and complaints at once, soft bounces after repeated
sends, policy blocks never; only for a delivery the report proves; each report once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import reports
from sends import Sent, configure, original, record_send, settings_of, status_of, subscribe

from newsletter.inbound.intake import Intake
from newsletter.inbound.parse import parse_message
from newsletter.states import Disposition, EventKind, EventSource

ANA, BEN = "ana@example.net", "ben@example.net"


@pytest.fixture
def sent(project: Path) -> dict[str, Sent]:
    configure(project)
    subscribe(project, ANA, BEN)
    return record_send(project, "2020-01")


def take(project: Path, data: bytes, **kwargs: str) -> list[Disposition]:
    with Intake(settings_of(project)) as intake:
        return [v.disposition for v in
                intake.record(parse_message(data, EventSource.PIPE, **kwargs))]


def events(project: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(project / "newsletter.db") as db:
        return db.execute("SELECT d.email, e.kind, e.status FROM delivery_events e JOIN "
                          "deliveries d ON d.id = e.delivery_id ORDER BY e.id").fetchall()


def test_a_hard_bounce_suppresses_the_address_on_every_list(project: Path,
                                                            sent: dict[str, Sent]) -> None:
    subscribe(project, ANA, list_name="partners")
    ana = sent[ANA]
    assert take(project, reports.postfix_dsn(original(ana), ANA, ana.return_path)) \
        == [Disposition.RECORDED]
    assert status_of(project, ANA) == "bounced" and status_of(project, BEN) == "active"
    assert events(project) == [(ANA, "hard", "5.1.1")]


def test_the_same_report_twice_counts_once(project: Path, sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    dsn = reports.exim_dsn(original(ana), ANA, ana.return_path)
    assert take(project, dsn) == [Disposition.RECORDED]
    assert take(project, dsn) == [Disposition.DUPLICATE]
    assert len(events(project)) == 1


def test_a_report_that_quotes_only_the_message_id_is_matched(project: Path,
                                                             sent: dict[str, Sent]) -> None:
    assert take(project, reports.microsoft_arf(original(sent[BEN]), BEN)) \
        == [Disposition.RECORDED]
    assert status_of(project, BEN) == "complained"


def test_a_complaint_unsubscribes_from_everything(project: Path,
                                                  sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    take(project, reports.yahoo_arf(original(ana), ANA, ana.return_path))
    assert status_of(project, ANA) == "complained"
    assert events(project) == [(ANA, "complaint", "")]


def test_a_policy_block_is_recorded_but_never_suppresses(project: Path,
                                                         sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    take(project, reports.gmail_dsn(original(ana), ANA, ana.return_path, status="5.7.1",
                                    lines=("550 5.7.1 Message rejected as likely spam",)))
    assert status_of(project, ANA) == "active"
    assert events(project) == [(ANA, "blocked", "5.7.1")]


def test_soft_bounces_on_3_of_the_last_5_sends_make_the_address_bounced(project: Path) -> None:
    configure(project)
    subscribe(project, ANA, BEN)
    sends = [record_send(project, f"2020-0{n}") for n in range(1, 5)]
    for number, send in enumerate((sends[0], sends[2], sends[3]), 1):
        ana = send[ANA]
        take(project, reports.postfix_dsn(original(ana), ANA, ana.return_path, status="5.2.2",
                                          diagnostic="smtp; 552 5.2.2 Mailbox full"))
        assert status_of(project, ANA) == ("bounced" if number == 3 else "active")
    assert [kind for _, kind, _ in events(project)] == ["soft"] * 3


def test_soft_bounces_older_than_the_last_sends_do_not_count(project: Path) -> None:
    configure(project, soft_bounce_limit=2, soft_bounce_sends=2)
    subscribe(project, ANA)
    sends = [record_send(project, f"2020-0{n}") for n in range(1, 4)]
    for send in (sends[0], sends[2]):
        ana = send[ANA]
        take(project, reports.postfix_dsn(original(ana), ANA, ana.return_path, status="4.4.7",
                                          diagnostic="smtp; 421 4.4.7 expired"))
    assert status_of(project, ANA) == "active"  # 2020-01 is not among the last 2 sends


def test_several_soft_bounces_of_one_send_count_as_one_send(project: Path,
                                                           sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    for n in range(3):
        take(project, reports.postfix_dsn(original(ana), ANA, ana.return_path, status="4.2.2",
                                          diagnostic="smtp; 452 4.2.2 Over quota",
                                          message_id=f"<retry.{n}@mx.efus.eu>"))
    assert status_of(project, ANA) == "active"
    assert len(events(project)) == 3


def test_a_forged_report_without_a_valid_token_or_message_id_changes_nothing(
        project: Path, sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    forged_token = ana.token[:-1] + ("a" if ana.token[-1] != "a" else "b")
    forged = reports.postfix_dsn(original(ana).replace(ana.message_id.encode(),
                                                       b"<made.up@efus.eu>"),
                                 ANA, f"bounces+{forged_token}@news.efus.eu")
    assert take(project, forged) == [Disposition.UNMATCHED]
    another_send = f"bounces+{ana.send_id + 1}.{ana.subscriber_id}.{ana.token[-13:]}@news.efus.eu"
    assert take(project, forged.replace(f"bounces+{forged_token}@news.efus.eu".encode(),
                                        another_send.encode())) == [Disposition.UNMATCHED]
    assert status_of(project, ANA) == "active" and events(project) == []


def test_a_dsn_about_someone_elses_mail_is_unmatched(project: Path,
                                                    sent: dict[str, Sent]) -> None:
    foreign = (b"From: someone@example.com\r\nTo: ana@example.net\r\n"
               b"Message-ID: <other.1@example.com>\r\n\r\nHi\r\n")
    dsn = reports.postfix_dsn(foreign, ANA, "someone@example.com")
    assert take(project, dsn) == [Disposition.UNMATCHED]
    assert status_of(project, ANA) == "active"


def test_a_token_found_anywhere_but_verified_is_enough(project: Path,
                                                      sent: dict[str, Sent]) -> None:
    """A report that returns nothing of the message: the envelope recipient proves it."""
    ana = sent[ANA]
    bare = reports.exchange_ndr(b"Subject: x\r\n\r\n", ANA, "fbl@efus.eu")
    assert take(project, bare) == [Disposition.UNMATCHED]
    assert take(project, bare, envelope_recipient=ana.return_path) == [Disposition.RECORDED]
    assert status_of(project, ANA) == "bounced"


def test_an_event_keeps_what_the_report_said(project: Path, sent: dict[str, Sent]) -> None:
    ana = sent[ANA]
    take(project, reports.exchange_ndr(original(ana), ANA, ana.return_path))
    with sqlite3.connect(project / "newsletter.db") as db:
        row = db.execute("SELECT kind, source, status, diagnostic, recipient, occurred_at, "
                         "recorded_at FROM delivery_events").fetchone()
    kind, source, status, diagnostic, recipient, occurred, recorded = row
    assert (kind, source, status, recipient) == (EventKind.HARD, "pipe", "5.1.10", ANA)
    assert diagnostic.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound")
    assert occurred is not None and recorded >= occurred
