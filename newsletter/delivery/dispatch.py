"""The send loop: claim, personalise, hand over, record, retry, at one shared rate.

Each connection runs in its own thread with its own transport. A worker claims a batch of
recipients from the ledger, builds their messages, waits for the rate limiter, journals
the hand-over, sends, and records each verdict. Temporary failures are retried with
exponential backoff and jitter. Setting `stop` makes every worker finish the message in
hand and return.

The pause rule counts events, not recipients: one hand-over (an API request, an SMTP
message or connection) that was refused for now is one temporary failure, however many
recipients it carried, and one that delivered anything ends the streak. Too many in a row
(`max_consecutive_errors`) pause the run: a service that keeps failing, not one bad
minute. A server that asks to slow down lowers the shared rate once per refusal.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..envelope import Personalised
from ..errors import (
    HeaderInjectionError,
    NewsletterError,
    OutcomeUnknown,
    QuotaExhausted,
    StoreError,
    TransportUnavailable,
)
from ..states import DeliveryState
from ..transports import Result, Status, Transport
from .clock import SYSTEM_CLOCK, Clock
from .editions import Editions
from .journal import Verdict
from .ledger import Claimed, Ledger
from .ratelimit import RateLimiter

CLAIM_SIZE = 50  # recipients a worker claims at most at once (unsubscribes are checked per
# claim); under a rate limit, a worker claims about a second's worth, so that an unsubscribe
# is honoured within a second or so even at one message a second
MAX_BACKOFF = 6 * 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 60.0  # first retry after about this long, then doubling
    give_up_after: float = 3 * 86400.0  # a recipient failing temporarily this long: failed
    max_wait: float = 120.0  # how long one run waits for deferred recipients

    def next_attempt(self, attempts: int, now: float) -> float:
        delay = min(self.base * 2 ** max(attempts - 1, 0), MAX_BACKOFF)
        return now + delay * random.uniform(0.75, 1.25)


@dataclass
class Tally:
    """What this run did, counted as verdicts come in."""

    counts: dict[DeliveryState, int] = field(default_factory=dict)
    consecutive_temporary: int = 0
    last_temporary: str = ""

    def add(self, state: DeliveryState) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1


class Dispatcher:
    def __init__(self, ledger: Ledger, editions: Editions,
                 new_transport: Callable[[], Transport], *, connections: int,
                 batch_size: int, limiter: RateLimiter, retry: RetryPolicy,
                 max_consecutive_errors: int, stop: threading.Event,
                 on_verdict: Callable[[DeliveryState], None] = lambda state: None,
                 on_event: Callable[[str], None] = lambda text: None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.ledger, self.editions, self.new_transport = ledger, editions, new_transport
        self.clock = clock
        self.connections, self.batch_size = max(1, connections), max(1, batch_size)
        self.limiter, self.retry = limiter, retry
        self.max_consecutive_errors = max_consecutive_errors
        self.stop = stop
        self.on_verdict, self.on_event = on_verdict, on_event
        self.tally = Tally()
        self.fatal: BaseException | None = None  # the first, written under _lock
        self.pause_reason = ""
        self._lock = threading.Lock()
        self._busy = 0  # workers holding claimed recipients

    def run(self) -> Tally:
        """Send until nothing is due (or stop); raises the first fatal error of a worker."""
        workers = [threading.Thread(target=self._worker, name=f"connection-{n + 1}",
                                    daemon=True) for n in range(self.connections)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if self.fatal is not None:  # the campaign settles the ledger as best it can
            raise self.fatal
        self.ledger.flush()
        return self.tally

    def _worker(self) -> None:
        transport = self.new_transport()
        try:
            while not self.stop.is_set():
                with self._lock:
                    claimed = self.ledger.claim(self._claim_size(), self.clock.now(),
                                                edition_of=self.editions.choose)
                    if claimed:
                        self._busy += 1
                if not claimed:
                    if not self._wait_for_more():
                        return
                    continue
                try:
                    self._send_claimed(transport, claimed)
                finally:
                    with self._lock:
                        self._busy -= 1
        except QuotaExhausted as exc:  # nothing more goes today: pause, a later run resumes
            with self._lock:
                self.pause_reason = self.pause_reason or str(exc)
            self.stop.set()
        except Exception as exc:  # noqa: BLE001 - run() raises it in the main thread
            self._fail(exc)
        finally:
            transport.close()

    def _fail(self, exc: BaseException) -> None:
        """Keep the first fatal error of any worker and stop them all."""
        with self._lock:
            first = self.fatal is None
            if first:
                self.fatal = exc
        self.stop.set()
        if first and isinstance(exc, StoreError):  # finishing may wait for the database
            self.on_event("stopping: the ledger cannot be written (see below); finishing the "
                          "messages in flight")

    def _claim_size(self) -> int:
        rate = self.limiter.rate
        per_worker = CLAIM_SIZE if rate is None else int(rate / self.connections) + 1
        return max(self.batch_size, min(CLAIM_SIZE, per_worker))

    def _wait_for_more(self) -> bool:
        """Nothing to claim now: wait for deferred recipients or busy workers, or stop."""
        now = self.clock.now()
        pending, next_due = self.ledger.outstanding(now)
        with self._lock:
            busy = self._busy
        if pending:
            return True
        if not busy and (next_due is None or next_due - now > self.retry.max_wait):
            return False
        delay = 0.2 if busy or next_due is None else min(max(next_due - now, 0.05), 1.0)
        return not self.clock.wait(self.stop, delay)

    def _send_claimed(self, transport: Transport, claimed: list[Claimed]) -> None:
        batches = _batches(claimed, self.batch_size)
        settled = 0  # batches[:settled] have a verdict, or the journal has them in flight
        try:
            for number, batch in enumerate(batches):
                if self.stop.is_set():
                    return
                messages, ready = [], []
                for item in batch:
                    try:
                        messages.append(self.editions.personalise(item.recipient, item.edition))
                        ready.append(item)
                    except HeaderInjectionError as exc:  # bad data in the store, not in transit
                        self._settle([item], [Result(Status.FAILED, str(exc))])
                if not ready:
                    settled = number + 1
                    continue
                admitted = self.limiter.acquire(len(ready), self.stop)
                if admitted is None:
                    return
                self.ledger.begin([c.delivery_id for c in ready])
                settled = number + 1
                self._hand_over(transport, ready, messages, admitted)
        finally:
            self._release([item for batch in batches[settled:] for item in batch])

    def _release(self, unsent: list[Claimed]) -> None:
        """Put back what this worker claimed and never handed over."""
        try:
            self.ledger.release([c.delivery_id for c in unsent])
        except StoreError:  # the next run frees them: claimed, not in the journal
            pass

    def _hand_over(self, transport: Transport, ready: list[Claimed],
                   messages: list[Personalised], admitted: int) -> None:
        """One event: send the batch, record every verdict, count it once, slow down once."""
        pause = None
        try:
            results = transport.send(messages)
        except QuotaExhausted as exc:  # not sent: they wait, pending, for the run that resumes
            self.ledger.release([c.delivery_id for c in ready], str(exc))
            raise
        except TransportUnavailable as exc:
            # One delay for the whole batch, so that it goes again as one request.
            pause = exc.retry_after
            delay = pause if pause is not None else \
                self.retry.next_attempt(ready[0].attempts, 0.0)
            results = [Result(Status.DEFERRED, str(exc), throttled=exc.throttled or
                              pause is not None, retry_after=delay)] * len(messages)
        except OutcomeUnknown as exc:
            results = [Result(Status.UNKNOWN, str(exc))] * len(messages)
        except NewsletterError as exc:
            # Refused before any message data: not sent, and not an attempt either.
            self.ledger.release([c.delivery_id for c in ready], str(exc))
            raise
        except Exception as exc:
            # Outside the transport contract (a bug): whether anything left is not known.
            reply = (f"the transport failed unexpectedly ({type(exc).__name__}: {exc}); "
                     "check the server's log before sending again with --resend-unknown")
            self._settle(ready, [Result(Status.UNKNOWN, reply)] * len(messages),
                         messages=messages)
            raise
        self._settle(ready, results, admitted, pause, messages)

    def _settle(self, ready: list[Claimed], results: list[Result], admitted: int | None = None,
                pause: float | None = None, messages: list[Personalised] | None = None) -> None:
        now = self.clock.now()
        ids = [m.message_id for m in messages] if messages is not None else [""] * len(ready)
        verdicts = [self._verdict(item, result, now, message_id)
                    for item, result, message_id in zip(ready, results, ids, strict=True)]
        self.ledger.record(*verdicts)
        throttled = next((r for r in results if r.throttled), None)
        if throttled is not None:
            rate = self.limiter.throttle(pause, admitted)
            if rate is not None:
                self.on_event(f"throttled by the server ({throttled.reply}); "
                              + ("pausing as asked" if math.isinf(rate) else
                                 f"slowing to {rate:.1f}/s"))
        states = [v.state for v in verdicts]
        with self._lock:
            for state in states:
                self.tally.add(state)
            if DeliveryState.SENT in states:
                self.tally.consecutive_temporary = 0
            elif DeliveryState.DEFERRED in states:
                self.tally.consecutive_temporary += 1
                self.tally.last_temporary = next(v.reply for v in verdicts
                                                 if v.state is DeliveryState.DEFERRED)
                if self.tally.consecutive_temporary >= self.max_consecutive_errors > 0 \
                        and not self.pause_reason:
                    self.pause_reason = (f"{self.tally.consecutive_temporary} temporary "
                                         f"failures in a row (last: "
                                         f"{self.tally.last_temporary})")
                    self.stop.set()
        for state in states:
            self.on_verdict(state)

    def _verdict(self, item: Claimed, result: Result, now: float,
                 message_id: str = "") -> Verdict:
        state, reply = DeliveryState(result.status), result.reply
        next_attempt, failed_since = None, item.failed_since
        if result.status is Status.DEFERRED:
            failed_since = failed_since or now
            if now - failed_since >= self.retry.give_up_after:
                state = DeliveryState.FAILED
                reply = f"gave up after {item.attempts} attempts: {reply}"
            elif result.retry_after is not None:  # the server said when: no sooner, no later
                next_attempt = now + result.retry_after
            else:
                next_attempt = self.retry.next_attempt(item.attempts, now)
        return Verdict(item.delivery_id, state, reply, next_attempt, failed_since, now,
                       result.suppress, message_id)


def _batches(claimed: list[Claimed], size: int) -> list[list[Claimed]]:
    """Batches of at most `size`, each of one edition: a mail API gets one body a request."""
    by_edition: dict[str | None, list[Claimed]] = {}
    for item in claimed:
        by_edition.setdefault(item.edition, []).append(item)
    return [group[start:start + size] for group in by_edition.values()
            for start in range(0, len(group), size)]
