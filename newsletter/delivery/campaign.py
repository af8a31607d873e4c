"""One bulk send of an issue, from the lock to the final report.

    lock the issue -> settle what a crashed run left -> freeze recipients -> send in
    parallel at one rate -> copy hard bounces to the store -> record how the send ended
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..audience.store import SubscriberStore, store_for
from ..audience.tokens import signer_for
from ..compose.render import ComposedEmail
from ..config import Settings
from ..database import open_database
from ..envelope import Recipient
from ..errors import NewsletterError
from ..states import FINAL_DELIVERY_STATES, WAITING_DELIVERY_STATES, DeliveryState, SendState
from ..transports import open_transport, transport_class
from .dispatch import Dispatcher, RetryPolicy, Tally
from .ledger import Ledger, StartReport
from .lock import SendLock
from .message import MessageFactory
from .ratelimit import RateLimiter
from .signing import DkimSigner


@dataclass(frozen=True)
class Plan:
    """What a send is about to do, for the confirmation prompt."""

    issue: str
    subject: str
    lists: tuple[str, ...]
    to_send: int  # recipients who will get a message in this run (if all goes well)
    already_done: int  # recipients of an earlier run of this send
    unknown: int
    transport: str
    resuming: bool


@dataclass
class Outcome:
    """How a run ended."""

    state: SendState
    counts: dict[str, int]  # over the whole send, by DeliveryState
    run: Tally = field(default_factory=Tally)
    start: StartReport | None = None
    reason: str = ""
    elapsed: float = 0.0
    suppressed: int = 0


class Campaign:
    """Sends one composed issue to lists, holding the issue's send lock while it lives."""

    def __init__(self, composed: ComposedEmail, settings: Settings, lists: Sequence[str], *,
                 transport_url: str | None = None) -> None:
        if composed.test:
            raise ValueError("a test composition cannot be sent to lists")
        self.composed, self.settings, self.lists = composed, settings, tuple(lists)
        self.transport_url = transport_url or settings.transport
        self.issue = composed.issue.slug
        self.database = settings.database_path
        self.lock = SendLock(self.database, self.issue)
        self.lock.acquire()  # before anything else: a second sender stops here
        try:
            self.store = store_for(settings)
            self.ledger = Ledger(open_database(self.database, threads=True), self.database,
                                 self.issue)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.ledger.close()
        self.store.close()
        self.lock.release()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def plan(self, *, include_new: bool = False, resend_unknown: bool = False) -> Plan:
        self.store.count_active(self.lists)  # unknown list names fail here, clearly
        counts = self.ledger.counts()
        send = self.ledger.send
        known = set(send.lists) if send else set()
        new_lists = [name for name in self.lists if name not in known]
        to_freeze = self.store.count_active(new_lists) if new_lists else 0
        if send and include_new:
            to_freeze = self.store.count_active(list(known | set(self.lists))) \
                - sum(counts.values())
        waiting = sum(counts.get(s, 0) for s in WAITING_DELIVERY_STATES)
        unknown = counts.get(DeliveryState.UNKNOWN, 0)
        transport = open_transport(self.transport_url, self.settings)
        return Plan(self.issue, self.composed.subject,
                    tuple(send.lists if send else ()) + tuple(new_lists),
                    max(to_freeze, 0) + waiting + (unknown if resend_unknown else 0),
                    sum(counts.get(s, 0) for s in FINAL_DELIVERY_STATES), unknown,
                    transport.description, send is not None)

    def run(self, stop: threading.Event, *, include_new: bool = False,
            resend_unknown: bool = False, on_start: Callable[[StartReport], None] = print,
            on_verdict: Callable[[DeliveryState], None] = lambda state: None,
            on_event: Callable[[str], None] = print) -> Outcome:
        began = time.monotonic()
        start = self.ledger.start(self.lists, self.composed.content_hash,
                                  include_new=include_new, resend_unknown=resend_unknown)
        on_start(start)
        suppressed = self._copy_suppressions()
        s = self.settings
        factory = MessageFactory(self.composed, s, signer_for(s),
                                 send_key=f"{self.issue}:{start.send.id}",
                                 dkim=DkimSigner.from_settings(s))
        now = time.time()
        limiter = RateLimiter(s.rate_per_second, s.rate_per_hour, s.rate_per_day,
                              sent_last_hour=self.ledger.sent_since(now - 3600)
                              if s.rate_per_hour else 0,
                              sent_last_day=self.ledger.sent_since(now - 86400)
                              if s.rate_per_day else 0)
        kind = transport_class(self.transport_url)
        batch = min(s.batch_size or kind.default_batch, kind.max_batch)
        dispatcher = Dispatcher(
            self.ledger, factory, lambda: open_transport(self.transport_url, s),
            connections=s.connections, batch_size=batch, limiter=limiter,
            retry=RetryPolicy(s.retry_base, s.give_up_after, s.retry_max_wait),
            max_consecutive_errors=s.max_consecutive_errors, stop=stop,
            on_verdict=on_verdict, on_event=on_event)
        try:
            tally = dispatcher.run()
        except NewsletterError as exc:
            self.ledger.finish(SendState.FAILED)
            exc.hint = exc.hint or "Fix the problem, then run the same command again to resume."
            raise
        suppressed += self._copy_suppressions()
        counts = self.ledger.counts()
        state, reason = self._ending(counts, dispatcher.pause_reason, stop.is_set())
        self.ledger.finish(state)
        return Outcome(state, counts, tally, start, reason, time.monotonic() - began,
                       suppressed)

    def _ending(self, counts: dict[str, int], pause_reason: str,
                stopped: bool) -> tuple[SendState, str]:
        if pause_reason:
            return SendState.PAUSED, f"paused after {pause_reason}"
        if stopped:
            return SendState.INTERRUPTED, "interrupted"
        waiting = counts.get(DeliveryState.PENDING, 0) + counts.get(DeliveryState.DEFERRED, 0)
        if waiting:
            return SendState.INCOMPLETE, f"{waiting} recipient(s) deferred by the server; " \
                                         "run the same command again later to retry them"
        unknown = counts.get(DeliveryState.UNKNOWN, 0)
        if unknown:
            return SendState.COMPLETE, f"{unknown} recipient(s) with an unknown outcome; " \
                                       "see `newsletter status`, re-send with --resend-unknown"
        return SendState.COMPLETE, ""

    def _copy_suppressions(self) -> int:
        """Hard bounces recorded by the ledger become `bounced` in the subscriber store."""
        bounced = self.ledger.suppressions()
        for _, email, reply in bounced:
            self.store.mark_bounced(email, f"hard bounce while sending {self.issue}: {reply}")
        self.ledger.suppressions_applied([delivery_id for delivery_id, _, _ in bounced])
        return len(bounced)


def dry_run(composed: ComposedEmail, settings: Settings, lists: Sequence[str],
            on_message: Callable[[int], None] = lambda size: None) -> tuple[int, int]:
    """Build every message without handing any over or recording anything: (count, bytes)."""
    factory = MessageFactory(composed, settings, signer_for(settings), send_key="dry-run",
                             dkim=DkimSigner.from_settings(settings))
    count = total = 0
    with SubscriberStore(settings.database_path) as store:
        for subscriber in store.stream(lists):
            message = factory.personalise(Recipient(subscriber.id, subscriber.email,
                                                    subscriber.name, lists[0],
                                                    subscriber.fields))
            count += 1
            total += len(message.data)
            on_message(len(message.data))
    return count, total
