"""Reading reports: DSNs as Postfix, Exim, Exchange and Gmail write them, ARF complaints as
Yahoo and Microsoft send them, old-style bounces, auto-replies, and mail that is none of these."""

from __future__ import annotations

import time

import pytest
import reports

from newsletter.inbound.classify import kind_of, status_code
from newsletter.inbound.parse import MAX_PARSED, parse_message
from newsletter.states import Disposition, EventKind, EventSource

TOKEN = "3.42.abcdefghijk23"
RETURN_PATH = f"bounces+{TOKEN}@news.efus.eu"
MESSAGE_ID = "<2020-01.k3j5h2m4n5b6v7c8@efus.eu>"
RECIPIENT = "ana.lopez@example.net"
ORIGINAL = (
    "From: Efus Newsletter <newsletter@efus.eu>\r\n"
    f"To: Ana Lopez <{RECIPIENT}>\r\n"
    "Subject: Efus Newsletter - January 2020\r\n"
    "Date: Thu, 16 Jan 2020 09:00:00 +0000\r\n"
    f"Message-ID: {MESSAGE_ID}\r\n"
    "List-Id: Efus Newsletter <newsletter.efus.eu>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Dear Ana, welcome to the January issue.\r\n").encode()


def only(data: bytes, **kwargs: str):  # type: ignore[no-untyped-def]
    parsed = parse_message(data, EventSource.PIPE, **kwargs)
    assert len(parsed.findings) == 1, parsed
    return parsed.findings[0]


@pytest.mark.parametrize(("status", "diagnostic", "expected_status", "kind"), [
    ("5.1.1", "smtp; 550 5.1.1 User unknown", "5.1.1", EventKind.HARD),
    ("5.0.0", "smtp; 550 5.1.1 <a@b>: Recipient address rejected", "5.1.1", EventKind.HARD),
    ("5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", "5.1.10", EventKind.HARD),
    ("5.2.2", "smtp; 552 5.2.2 Mailbox full", "5.2.2", EventKind.SOFT),
    ("4.4.7", "smtp; 421 4.4.7 Message expired", "4.4.7", EventKind.SOFT),
    ("5.7.1", "smtp; 550 5.7.1 Message rejected as spam", "5.7.1", EventKind.BLOCKED),
    ("5.0.0", "smtp; 550-5.7.26 Unauthenticated email is not accepted", "5.7.26",
     EventKind.BLOCKED),
    ("4.7.0", "smtp; 421 4.7.0 Try again later, closing connection", "4.7.0",
     EventKind.BLOCKED),
    ("", "smtp; 550 No such user here", "5.0.0", EventKind.SOFT),
    ("5.4.1", "smtp; 550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
     "5.4.1", EventKind.SOFT),
])
def test_status_codes_are_classified_by_the_table(status: str, diagnostic: str,
                                                   expected_status: str,
                                                   kind: EventKind) -> None:
    found = status_code(status, diagnostic)
    assert found == expected_status
    assert kind_of(found) is kind


def test_postfix_dsn_names_recipient_status_token_and_message_id() -> None:
    finding = only(reports.postfix_dsn(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert finding.kind is EventKind.HARD
    assert (finding.recipient, finding.status) == (RECIPIENT, "5.1.1")
    assert "User unknown in virtual mailbox table" in finding.diagnostic
    assert TOKEN in finding.tokens
    assert MESSAGE_ID in finding.message_ids
    assert finding.occurred_at is not None


def test_postfix_dsn_with_the_whole_message_returned() -> None:
    finding = only(reports.postfix_dsn(ORIGINAL, RECIPIENT, RETURN_PATH, whole=True,
                                       status="5.2.2", diagnostic="smtp; 552 5.2.2 Over quota"))
    assert (finding.kind, finding.status) == (EventKind.SOFT, "5.2.2")
    assert MESSAGE_ID in finding.message_ids


def test_exim_dsn_takes_the_precise_code_from_the_smtp_reply() -> None:
    finding = only(reports.exim_dsn(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert (finding.kind, finding.status) == (EventKind.HARD, "5.1.1")
    assert TOKEN in finding.tokens and MESSAGE_ID in finding.message_ids


def test_exchange_ndr_recipient_not_found_is_hard() -> None:
    finding = only(reports.exchange_ndr(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert (finding.kind, finding.status) == (EventKind.HARD, "5.1.10")
    assert "RecipientNotFound" in finding.diagnostic
    assert MESSAGE_ID in finding.message_ids and TOKEN in finding.tokens


def test_gmail_dsn_with_its_multi_line_reply() -> None:
    finding = only(reports.gmail_dsn(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert (finding.kind, finding.status) == (EventKind.HARD, "5.1.1")
    assert "does not exist" in finding.diagnostic and "\n" not in finding.diagnostic


def test_gmail_policy_block_is_blocked_not_a_bounce() -> None:
    data = reports.gmail_dsn(ORIGINAL, RECIPIENT, RETURN_PATH, status="5.7.1", lines=(
        "550-5.7.1 [192.0.2.10] Our system has detected that this message is likely",
        "550 5.7.1 unsolicited mail. To reduce the amount of spam sent to Gmail - gsmtp"))
    assert only(data).kind is EventKind.BLOCKED


def test_a_delayed_warning_changes_nothing() -> None:
    parsed = parse_message(reports.postfix_dsn(ORIGINAL, RECIPIENT, RETURN_PATH,
                                               action="delayed", status="4.4.1"),
                           EventSource.PIPE)
    assert parsed.findings == [] and parsed.disposition is Disposition.IGNORED


def test_yahoo_feedback_report_is_a_complaint() -> None:
    finding = only(reports.yahoo_arf(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert finding.kind is EventKind.COMPLAINT
    assert finding.recipient == RECIPIENT
    assert TOKEN in finding.tokens and MESSAGE_ID in finding.message_ids
    assert "Yahoo" in finding.diagnostic


def test_microsoft_jmrp_report_is_a_complaint_found_by_message_id() -> None:
    finding = only(reports.microsoft_arf(ORIGINAL, RECIPIENT))
    assert finding.kind is EventKind.COMPLAINT
    assert finding.recipient == RECIPIENT
    assert finding.tokens == () and finding.message_ids == (MESSAGE_ID,)


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    data = reports.yahoo_arf(ORIGINAL, RECIPIENT, RETURN_PATH).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    parsed = parse_message(data, EventSource.PIPE)
    assert parsed.findings == [] and parsed.disposition is Disposition.IGNORED


def test_an_old_style_exim_bounce_is_read_by_flufl_bounce() -> None:
    finding = only(reports.exim_legacy(ORIGINAL, RECIPIENT, RETURN_PATH))
    assert finding.recipient == RECIPIENT
    assert finding.kind is EventKind.SOFT  # no status code: counted, not suppressed at once
    assert TOKEN in finding.tokens and MESSAGE_ID in finding.message_ids


@pytest.mark.parametrize("kind", ["rfc3834", "exchange", "x-autoreply", "vacation"])
def test_auto_replies_are_ignored(kind: str) -> None:
    parsed = parse_message(reports.auto_reply(kind, RETURN_PATH), EventSource.PIPE)
    assert parsed.findings == [] and parsed.disposition is Disposition.AUTO_REPLY


def test_mail_from_a_person_is_not_a_report() -> None:
    parsed = parse_message(reports.plain_mail(RETURN_PATH), EventSource.PIPE)
    assert parsed.findings == [] and parsed.disposition is Disposition.NOT_A_REPORT


def test_the_envelope_recipient_given_by_the_mail_server_is_a_token() -> None:
    data = reports.microsoft_arf(ORIGINAL, RECIPIENT)
    finding = only(data, envelope_recipient=RETURN_PATH)
    assert finding.tokens == (TOKEN,)


def test_a_huge_message_is_read_only_as_far_as_needed() -> None:
    padding = b"X" * 76 + b"\r\n"
    huge = reports.postfix_dsn(ORIGINAL + padding * (8 * MAX_PARSED // 78), RECIPIENT,
                               RETURN_PATH, whole=True)
    assert len(huge) > 8 * MAX_PARSED
    started = time.perf_counter()
    finding = only(huge)
    assert finding.kind is EventKind.HARD
    assert time.perf_counter() - started < 5  # bounded: a generous limit, not a benchmark


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\xff\xfe garbage \r\n\r\n\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary at all",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n"
    b"--b\r\nContent-Type: message/feedback-report\r\n\r\n\xff\xfe: \x00\r\n--b--\r\n",
    b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 9.9.9\r\n",
])
def test_malformed_mail_is_never_a_crash(data: bytes) -> None:
    parsed = parse_message(data, EventSource.PIPE)
    assert all(f.kind in EventKind for f in parsed.findings)
