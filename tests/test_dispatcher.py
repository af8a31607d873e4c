"""The send loop in-process: a real ledger on SQLite, the memory transport, a fake clock.

Days of retries and backoff pass in milliseconds, so the rules that need time (give up
after a while, pause after failing events in a row) are tested exactly, without sleeping.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import REPO

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.audience.tokens import Signer
from newsletter.compose.issue import load_issue
from newsletter.compose.render import ComposedEmail, compose
from newsletter.config import Settings, load_settings
from newsletter.database import open_database
from newsletter.delivery.dispatch import Dispatcher, RetryPolicy
from newsletter.delivery.editions import Editions
from newsletter.delivery.ledger import Ledger
from newsletter.delivery.message import MessageFactory
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.envelope import Personalised
from newsletter.transports.base import Result, Status
from newsletter.transports.memory import MemoryTransport

HOUR = 3600.0
DAY = 24 * HOUR


class FakeClock:
    """Time stands still until the loop waits; then it moves on at once."""

    def __init__(self) -> None:
        self.at = 1_600_000_000.0
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            return self.at

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self.lock:
            self.at += seconds
        return stop.is_set()


class Scripted(MemoryTransport):
    """The memory transport with a verdict chosen per call: `answer(call, batch)`."""

    def __init__(self, answer: Callable[[int, Sequence[Personalised]], list[Result]],
                 calls: list[list[str]]) -> None:
        super().__init__()
        self.answer, self.calls = answer, calls

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        self.calls.append([m.recipient.email for m in batch])
        return self.answer(len(self.calls), batch)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env={"NEWSLETTER_SECRET": "x" * 32})


@pytest.fixture(scope="module")
def composed(settings: Settings) -> ComposedEmail:
    return compose(load_issue(REPO / "issues/2020-01.yaml", "issues/2020-01.yaml"), settings)


def send(tmp_path: Path, settings: Settings, composed: ComposedEmail, count: int,
         answer: Callable[[int, Sequence[Personalised]], list[Result]], *,
         batch_size: int = 10, connections: int = 1, retry: RetryPolicy | None = None,
         max_consecutive_errors: int = 25, names: dict[int, str] | None = None,
         ) -> tuple[Dispatcher, Ledger, list[list[str]], FakeClock]:
    """Run one send of `count` subscribers to the end; what the transport saw, per call."""
    database = tmp_path / "newsletter.db"
    emails = [f"r{n:03d}@example.org" for n in range(count)]
    with SubscriberStore(database) as store:
        store.merge([NewRow(n + 1, e, address_key(e), f"Reader {n}", {})
                     for n, e in enumerate(emails)], "members")
    if names:  # data from before names were checked at the door, straight into the file
        with open_database(database) as db:
            for subscriber_id, name in names.items():
                db.execute("UPDATE subscribers SET name = ? WHERE id = ?", (name, subscriber_id))
    ledger = Ledger(open_database(database, threads=True), database, "2020-01")
    start = ledger.start(["members"], composed.content_hash)
    editions = Editions(composed, settings, lambda edition: MessageFactory(
        edition, settings, Signer(b"x" * 32), send_key=f"2020-01:{start.send.id}",
        send_id=start.send.id))
    calls: list[list[str]] = []
    clock = FakeClock()
    dispatcher = Dispatcher(
        ledger, editions, lambda: Scripted(answer, calls), connections=connections,
        batch_size=batch_size, limiter=RateLimiter(), stop=threading.Event(),
        retry=retry or RetryPolicy(base=60.0, give_up_after=3 * DAY, max_wait=30 * DAY),
        max_consecutive_errors=max_consecutive_errors, clock=clock)
    dispatcher.run()
    return dispatcher, ledger, calls, clock


def sent(batch: Sequence[Personalised]) -> list[Result]:
    return [Result(Status.SENT, "250 ok") for _ in batch]


def deferred(batch: Sequence[Personalised]) -> list[Result]:
    return [Result(Status.DEFERRED, "451 try later") for _ in batch]


def test_a_recipient_deferred_for_longer_than_give_up_after_fails_with_its_attempts(
        tmp_path: Path, settings: Settings, composed: ComposedEmail) -> None:
    dispatcher, ledger, calls, clock = send(
        tmp_path, settings, composed, 5, lambda call, batch: deferred(batch),
        max_consecutive_errors=0, retry=RetryPolicy(base=60.0, give_up_after=2 * HOUR,
                                                    max_wait=DAY))
    assert ledger.counts() == {"failed": 5}
    attempts = Counter(email for call in calls for email in call)
    # 60 s, then doubling (with +-25 % jitter): about seven tries fit in two hours
    assert set(attempts) == {f"r{n:03d}@example.org" for n in range(5)}
    assert all(5 <= n <= 9 for n in attempts.values()), attempts
    assert clock.at - 1_600_000_000.0 >= 2 * HOUR
    replies = {r for (r,) in ledger._db.execute("SELECT reply FROM deliveries")}
    assert all(r.startswith("gave up after ") and r.endswith("451 try later") for r in replies)


def test_a_recipient_deferred_once_is_sent_on_the_retry_and_only_then(
        tmp_path: Path, settings: Settings, composed: ComposedEmail) -> None:
    _, ledger, calls, clock = send(
        tmp_path, settings, composed, 20,
        lambda call, batch: deferred(batch) if call == 1 else sent(batch))
    assert ledger.counts() == {"sent": 20}
    assert Counter(e for call in calls for e in call) == Counter(
        {f"r{n:03d}@example.org": 2 if n < 10 else 1 for n in range(20)})
    assert clock.at - 1_600_000_000.0 >= 45  # waited for the first retry, 60 s +- 25 %


def test_one_subscriber_with_a_line_break_in_the_name_fails_alone(
        tmp_path: Path, settings: Settings, composed: ComposedEmail) -> None:
    _, ledger, calls, _ = send(tmp_path, settings, composed, 12, lambda c, b: sent(b),
                               names={3: "Eve\r\nBcc: everyone@example.org"})
    assert ledger.counts() == {"sent": 11, "failed": 1}
    assert "r002@example.org" not in {e for call in calls for e in call}
    (reply,) = ledger._db.execute("SELECT reply FROM deliveries WHERE state = 'failed'").fetchone()
    assert "line break" in reply


def test_the_pause_counts_failed_requests_not_the_recipients_they_carried(
        tmp_path: Path, settings: Settings, composed: ComposedEmail) -> None:
    dispatcher, ledger, calls, _ = send(
        tmp_path, settings, composed, 200, lambda call, batch: deferred(batch),
        batch_size=50, max_consecutive_errors=3)
    assert len(calls) == 3  # three refused requests of 50, not three recipients
    assert dispatcher.pause_reason.startswith("3 temporary failures in a row")
    assert ledger.counts() == {"deferred": 150, "pending": 50}


def test_a_delivery_between_failures_starts_the_count_again(
        tmp_path: Path, settings: Settings, composed: ComposedEmail) -> None:
    dispatcher, ledger, calls, _ = send(
        tmp_path, settings, composed, 60,
        lambda call, batch: sent(batch) if call % 3 == 0 else deferred(batch),
        batch_size=5, max_consecutive_errors=3,
        retry=RetryPolicy(base=1.0, give_up_after=DAY, max_wait=DAY))
    assert dispatcher.pause_reason == ""
    assert ledger.counts() == {"sent": 60}
