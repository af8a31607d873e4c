"""The ledger and its journal on a real SQLite file: freezing, claiming, crash recovery."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import pytest

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.database import open_database
from newsletter.delivery.journal import Journal, Verdict, replay
from newsletter.delivery.ledger import Ledger
from newsletter.delivery.lock import SendLock
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.errors import AlreadyRunning


def make_store(tmp_path: Path, lists: dict[str, list[str]]) -> Path:
    database = tmp_path / "newsletter.db"
    with SubscriberStore(database) as store:
        for name, addresses in lists.items():
            store.merge([NewRow(i + 1, a, address_key(a), a.split("@")[0].title(), {})
                         for i, a in enumerate(addresses)], name)
    return database


def ledger(database: Path) -> Ledger:
    return Ledger(open_database(database, threads=True), database, "2020-01")


def test_start_freezes_active_recipients_once_across_lists(tmp_path: Path) -> None:
    database = make_store(tmp_path, {"members": ["a@x.org", "b@x.org"],
                                     "partners": ["b@x.org", "c@x.org"]})
    with SubscriberStore(database) as store:
        store.unsubscribe("c@x.org", "partners")
    start = ledger(database).start(["members", "partners"], "hash")
    assert start.created and start.added == 2
    again = ledger(database).start(["members", "partners"], "hash")
    assert not again.created and again.added == 0


def test_claim_skips_who_unsubscribed_after_the_send_started(tmp_path: Path) -> None:
    database = make_store(tmp_path, {"members": ["a@x.org", "b@x.org", "c@x.org"]})
    book = ledger(database)
    book.start(["members"], "hash")
    with SubscriberStore(database) as store:
        store.unsubscribe("b@x.org", "members")
    claimed = book.claim(10)
    assert [c.recipient.email for c in claimed] == ["a@x.org", "c@x.org"]
    assert claimed[0].recipient.name == "A"
    assert book.counts() == {"sending": 2, "skipped": 1}


def test_a_crashed_run_leaves_unknown_only_what_was_handed_over(tmp_path: Path) -> None:
    database = make_store(tmp_path, {"members": [f"r{n}@x.org" for n in range(6)]})
    book = ledger(database)
    book.start(["members"], "hash")
    claimed = book.claim(6)
    ids = [c.delivery_id for c in claimed]
    book.begin(ids[:3])  # three handed over ...
    book.record(Verdict(ids[0], "sent", "250 ok", at=1.0))  # ... one confirmed
    book.record(Verdict(ids[1], "deferred", "451", next_attempt_at=5.0, at=1.0))
    book.begin([ids[1]])  # its retry was in flight when the process died
    # No flush, no finish: the process is gone. The next run recovers from the journal.
    start = ledger(database).start(["members"], "hash")
    assert (start.recovered_unknown, start.recovered_pending) == (2, 3)
    assert ledger(database).counts() == {"sent": 1, "unknown": 2, "pending": 3}


def test_resend_unknown_puts_them_back_in_the_queue(tmp_path: Path) -> None:
    database = make_store(tmp_path, {"members": ["a@x.org"]})
    book = ledger(database)
    book.start(["members"], "hash")
    book.begin([book.claim(1)[0].delivery_id])
    start = ledger(database).start(["members"], "hash", resend_unknown=True)
    assert (start.recovered_unknown, start.requeued_unknown) == (1, 1)
    assert ledger(database).counts() == {"pending": 1}


def test_journal_replay_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = Journal(path)
    journal.begun([1, 2])
    journal.verdict(Verdict(1, "sent", "250", at=1.0))
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'[2, "sen')  # killed in the middle of a write
    replayed = replay(path)
    assert set(replayed.verdicts) == {1}
    assert replayed.without_verdict == {2}


def test_journal_rotation_keeps_only_what_is_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = Journal(path)
    journal.begun([1, 2, 3])
    journal.verdict(Verdict(1, "sent", "250", at=1.0))
    journal.rotate({2, 3})
    journal.verdict(Verdict(2, "sent", "250", at=2.0))
    journal.close()
    replayed = replay(path)
    assert set(replayed.verdicts) == {2}
    assert replayed.without_verdict == {3}


def test_send_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    database = tmp_path / "newsletter.db"
    with SendLock(database, "2020-01"):
        with pytest.raises(AlreadyRunning, match=rf"already running \(pid {os.getpid()}\)"):
            SendLock(database, "2020-01").acquire()
    with SendLock(database, "2020-01"):  # released on exit
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_spaces_messages_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=10, clock=clock)
    stop = threading.Event()
    assert limiter.acquire(1, stop) is not None
    assert limiter._wait_time(1) > 0.09  # the next one is due 0.1 s later
    clock.now += 0.1
    assert limiter._wait_time(1) <= 1e-9


def test_hourly_budget_counts_what_earlier_runs_sent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=100, sent_last_hour=99, clock=clock)
    stop = threading.Event()
    assert limiter.acquire(1, stop) is not None
    assert limiter._wait_time(1) > 3000  # the hour's budget is spent
    clock.now += 3601
    assert limiter._wait_time(1) <= 0


def test_throttling_halves_the_achieved_rate_and_pauses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    stop = threading.Event()
    for _ in range(100):
        clock.now += 0.01  # 100 messages a second
        limiter.acquire(1, stop)
    rate = limiter.throttle(pause=2.0)
    assert 40 <= rate <= 60
    assert limiter._wait_time(1) >= 1.9


def test_refusals_of_requests_already_in_flight_do_not_halve_the_rate_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    stop = threading.Event()
    admitted = []
    for _ in range(100):
        clock.now += 0.01  # 100 messages a second, four of them still in flight below
        admitted.append(limiter.acquire(1, stop))
    rate = limiter.throttle(pause=1.0, admitted=admitted[-1])
    assert rate is not None and 40 <= rate <= 60
    for earlier in admitted[-4:-1]:  # the other connections' answers to the same moment
        assert limiter.throttle(pause=3.0, admitted=earlier) is None
    assert limiter.rate == rate and limiter._wait_time(1) >= 2.9  # the longer pause holds
    clock.now += 3.0
    later = limiter.acquire(1, stop)  # sent at the lowered rate, and refused again
    lower = limiter.throttle(admitted=later)
    assert lower is not None and lower < rate


def test_throttled_at_the_start_the_run_halves_its_limit_not_a_guess_from_two_messages() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=1000, clock=clock)
    stop = threading.Event()
    for _ in range(2):
        clock.now += 0.001
        limiter.acquire(1, stop)
    assert limiter.throttle() == 500


def test_an_unlimited_run_throttled_before_it_has_a_rate_pauses_but_stays_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    stop = threading.Event()
    limiter.acquire(500, stop)  # the first request of a mail API's batch size
    assert limiter.throttle(pause=1.0) == math.inf
    assert limiter.rate is None and limiter._wait_time(500) >= 0.99  # only the pause
    clock.now += 1.0
    assert limiter._wait_time(500) == 0.0  # then the run goes on at full speed
