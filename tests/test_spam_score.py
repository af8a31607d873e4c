"""Spam score: what reviewers and subscribers receive scores below 1.0 in SpamAssassin.

The messages are sent to a real SMTP server on 127.0.0.1 and scored as the server received
them, with SpamAssassin's local rules only (`spamassassin -L -t`: no DNS, no network). A
plain EmailMessage with an MJML body scored 7.0 (no Date, no Message-ID, low-contrast
hidden text); these tests keep each of those from coming back.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO
from smtp_server import SmtpServer

from newsletter.audience.tokens import Signer
from newsletter.compose.issue import load_issue
from newsletter.compose.render import compose
from newsletter.config import load_settings
from newsletter.delivery.message import MessageFactory
from newsletter.envelope import Recipient
from newsletter.transports.smtp import SmtpTransport

SPAMASSASSIN = Path("/usr/bin/spamassassin")
MAX_SCORE = 1.0
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def spamassassin() -> Path:
    if not SPAMASSASSIN.exists():
        if os.environ.get("NEWSLETTER_REQUIRE_SPAMASSASSIN"):
            pytest.fail("NEWSLETTER_REQUIRE_SPAMASSASSIN is set but /usr/bin/spamassassin is "
                        "missing (apt-get install spamassassin)")
        pytest.skip("SpamAssassin not installed (apt-get install spamassassin)")
    return SPAMASSASSIN


def spam_report(spamassassin: Path, data: bytes) -> tuple[float, list[str], str]:
    """The score, the rules that fired and the full report for one message.

    Bayes is off: the score then depends on the rules only, not on what this machine's
    SpamAssassin has learnt, and scoring never trains it on our messages (auto-learn).
    """
    result = subprocess.run([str(spamassassin), "-L", "-t", "-x", "--cf=use_bayes 0"],
                            input=data, capture_output=True, timeout=120, check=True)
    report = result.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: (.*(?:\n[ \t].*)*)", report, re.MULTILINE)
    if status:
        score = float(re.search(r"score=(-?\d+(?:\.\d+)?)", status.group(1)).group(1))
        tests = re.search(r"tests=([^=]*?)(?:\s+autolearn=|\s+version=|$)", status.group(1))
        rules = re.split(r"[,\s]+", tests.group(1).strip()) if tests else []
    else:  # no header: read the report's summary line
        score = float(re.search(r"\((-?\d+(?:\.\d+)?) points", report).group(1))
        rules = re.findall(r"^\s*-?\d+\.\d+ ([A-Z0-9_]+)", report, re.MULTILINE)
    return score, [r for r in rules if r and r != "none"], report


def assert_not_spam(spamassassin: Path, data: bytes) -> None:
    score, rules, report = spam_report(spamassassin, data)
    details = report[report.find("Content analysis details"):]
    assert score < MAX_SCORE, f"score {score} ({', '.join(rules)}):\n{details}"
    for rule in ("MISSING_DATE", "MISSING_MID", "HTML_FONT_LOW_CONTRAST", "MIME_QP_LONG_LINE",
                 "MIME_HTML_ONLY", "HTML_MIME_NO_HTML_TAG"):
        assert rule not in rules, f"{rule} fired:\n{details}"


def test_test_send_as_received_scores_below_one(spamassassin: Path, cli: Cli,
                                                project: Path) -> None:
    with SmtpServer() as relay:
        result = cli("send", "issues/2020-01.yaml", "--test",
                     "--transport", f"smtp://127.0.0.1:{relay.port}?tls=off")
    assert result.returncode == 0, result.stderr
    (received,) = relay.accepted
    assert_not_spam(spamassassin, received.data)


def test_subscriber_copy_as_received_scores_below_one(spamassassin: Path,
                                                      tmp_path: Path) -> None:
    settings = load_settings(REPO / "newsletter.toml", env={})
    composed = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)
    factory = MessageFactory(composed, settings, Signer(b"a-secret-for-the-spam-test"),
                             send_key="spam-test")
    recipient = Recipient(1234, "jeanne.dupont@example.org", "Jeanne Dupont", "members")
    with SmtpServer() as relay:
        with SmtpTransport("127.0.0.1", relay.port, sender=settings.sender_address,
                           starttls=False, timeout=10) as transport:
            (result,) = transport.send([factory.personalise(recipient)])
        assert result.status == "sent", result.reply
    assert_not_spam(spamassassin, relay.accepted[0].data)
