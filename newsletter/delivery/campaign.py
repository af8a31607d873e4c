"""One bulk send of an issue, from the lock to the final report.

    lock the issue -> settle what a crashed run left -> check the route -> freeze
    recipients -> send in parallel at one rate -> copy hard bounces to the store ->
    record how the send ended

The ledger records the transport each send goes through (its URL, without secrets): the
rest of a send goes the same way unless --transport says otherwise, so that a resume
command typed without it cannot quietly deliver the rest somewhere else.
"""

from __future__ import annotations

import shlex
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
from ..errors import ConfigError, NewsletterError, StoreError
from ..states import FINAL_DELIVERY_STATES, WAITING_DELIVERY_STATES, DeliveryState, SendState
from ..transports import Limits, open_transport, redact_url, transport_class
from .dispatch import Dispatcher, RetryPolicy, Tally
from .editions import Editions
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
    limits: Limits | None = None  # the service's own rate and quota, if it has them


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
    idle: str = ""  # why this run mailed nobody, and what would change that


class Campaign:
    """Sends one composed issue to lists, holding the issue's send lock while it lives."""

    def __init__(self, composed: ComposedEmail, settings: Settings, lists: Sequence[str], *,
                 transport_url: str | None = None, new_version: bool = False) -> None:
        if composed.test:
            raise ValueError("a test composition cannot be sent to lists")
        self.composed, self.settings, self.lists = composed, settings, tuple(lists)
        self.explicit = transport_url is not None  # --transport: may change the route
        self.transport_url = transport_url or settings.transport
        self.route = redact_url(self.transport_url)
        self.new_version = new_version  # resume although the content changed (a fixed typo)
        self._limits: Limits | None = None
        self._limits_read = False
        self.issue = composed.issue.slug
        self.database = settings.database_path
        self.lock = SendLock(self.database, self.issue)
        self.lock.acquire()  # before anything else: a second sender stops here
        try:
            timeout = settings.busy_timeout
            self.store = store_for(settings)
            self.ledger = Ledger(open_database(self.database, threads=True,
                                               busy_timeout=timeout), self.database, self.issue)
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
        self.ledger.recover()  # count what a killed run left as it really stands
        self._check_route()
        counts = self.ledger.counts()
        send = self.ledger.send
        known = set(send.lists) if send else set()
        new_lists = [name for name in self.lists if name not in known]
        to_freeze = self.store.count_active(new_lists) if new_lists else 0
        if send is None and not to_freeze:
            raise self._nobody()
        if send and include_new:
            to_freeze = self.ledger.newcomers(list(known | set(self.lists)))
        waiting = sum(counts.get(s, 0) for s in WAITING_DELIVERY_STATES)
        unknown = counts.get(DeliveryState.UNKNOWN, 0)
        description = open_transport(self.transport_url, self.settings).description
        return Plan(self.issue, self.composed.subject,
                    tuple(send.lists if send else ()) + tuple(new_lists),
                    max(to_freeze, 0) + waiting + (unknown if resend_unknown else 0),
                    sum(counts.get(s, 0) for s in FINAL_DELIVERY_STATES), unknown,
                    description, send is not None, self.limits())

    def limits(self) -> Limits | None:
        """The service's own rate and quota, read once (for the plan, then the run)."""
        if not self._limits_read:
            with open_transport(self.transport_url, self.settings) as transport:
                self._limits = transport.limits()
            self._limits_read = True
        return self._limits

    def _check_route(self) -> None:
        """A resume goes where the send went, unless --transport names another way."""
        send = self.ledger.send
        if send is None or send.transport in (None, self.route) or self.explicit:
            return
        raise ConfigError(
            f"{self.issue} was being sent through {send.transport}, and this run would send "
            f"the rest through {self.route}. To go on as before, add --transport "
            f"{shlex.quote(send.transport)}; to change the route, give --transport with the "
            "new URL")

    def _nobody(self) -> NewsletterError:
        """Why a new send would mail nobody: the lists' own counts."""
        counts = {c.name: c for c in self.store.lists()}
        parts = []
        for name in self.lists:
            c = counts[name]
            others = [f"{n} {what}" for n, what in ((c.unsubscribed, "unsubscribed"),
                                                    (c.bounced, "bounced"),
                                                    (c.complained, "complained")) if n]
            parts.append(f"{name} has no active subscriber"
                         + (f" ({', '.join(others)})" if others else " (it is empty)"))
        error = NewsletterError(f"nobody to send {self.issue} to: {'; '.join(parts)}; nothing "
                                "was sent or recorded")
        error.hint = ("Add subscribers (newsletter subscribers import FILE --list NAME) or send "
                      "to another list, then run the command again.")
        return error

    def run(self, stop: threading.Event, *, include_new: bool = False,
            resend_unknown: bool = False, on_start: Callable[[StartReport], None] = print,
            on_verdict: Callable[[DeliveryState], None] = lambda state: None,
            on_event: Callable[[str], None] = print) -> Outcome:
        began = time.monotonic()
        self.ledger.recover()
        self._check_route()
        before = self.ledger.send
        if before is None and not self.store.count_active(self.lists):
            raise self._nobody()
        self.limits()  # before anything is recorded: refused credentials stop here
        issue = self.composed.issue
        start = self.ledger.start(self.lists, self.composed.content_hash,
                                  include_new=include_new, resend_unknown=resend_unknown,
                                  transport=self.route, new_version=self.new_version,
                                  issue_date=issue.date.isoformat(), source=issue.source.name)
        on_start(start)
        if before is not None and before.transport not in (None, self.route):
            on_event(f"the rest of the send goes through {self.route}, no longer through "
                     f"{before.transport}")
        try:
            suppressed = self._copy_suppressions()
            dispatcher = self._dispatcher(start, stop, on_verdict, on_event)
            tally = dispatcher.run()
            suppressed += self._copy_suppressions()
            counts = self.ledger.counts()
            state, reason = self._ending(counts, dispatcher.pause_reason, stop.is_set())
            idle = "" if tally.counts or stop.is_set() else self._idle(counts, include_new)
            self.ledger.finish(state)
        except StoreError:
            self._finish_if_possible(SendState.INTERRUPTED)
            raise
        except NewsletterError as exc:
            self._finish_if_possible(SendState.FAILED)
            exc.hint = exc.hint or "Fix the problem, then run the same command again to resume."
            raise
        except BaseException:  # a bug: record what can be recorded, then show it
            self._finish_if_possible(SendState.FAILED)
            raise
        return Outcome(state, counts, tally, start, reason, time.monotonic() - began,
                       suppressed, idle)

    def _dispatcher(self, start: StartReport, stop: threading.Event,
                    on_verdict: Callable[[DeliveryState], None],
                    on_event: Callable[[str], None]) -> Dispatcher:
        s = self.settings
        kind = transport_class(self.transport_url)
        signer = signer_for(s)
        dkim = DkimSigner.from_settings(s, unsigned=kind.rewritten_headers)
        editions = Editions(self.composed, s, lambda edition: MessageFactory(
            edition, s, signer, send_key=f"{self.issue}:{start.send.id}",
            send_id=start.send.id, dkim=dkim))
        now = time.time()
        rate = s.rate_per_second
        limits = self.limits()
        if limits is not None and limits.per_second and not 0 < rate <= limits.per_second:
            rate = limits.per_second
            on_event(f"the mail service allows {rate:g} messages a second: the run goes no "
                     "faster")
        limiter = RateLimiter(rate, s.rate_per_hour, s.rate_per_day,
                              sent_last_hour=self.ledger.sent_since(now - 3600)
                              if s.rate_per_hour else 0,
                              sent_last_day=self.ledger.sent_since(now - 86400)
                              if s.rate_per_day else 0)
        batch = min(s.batch_size or kind.default_batch, kind.max_batch)
        return Dispatcher(
            self.ledger, editions, lambda: open_transport(self.transport_url, s),
            connections=s.connections, batch_size=batch, limiter=limiter,
            retry=RetryPolicy(s.retry_base, s.give_up_after, s.retry_max_wait),
            max_consecutive_errors=s.max_consecutive_errors, stop=stop,
            on_verdict=on_verdict, on_event=on_event)

    def _finish_if_possible(self, state: SendState) -> None:
        """Record how the run ended; if the database cannot take it now, the journal keeps
        every verdict and the next run settles the rest."""
        try:
            self.ledger.finish(state)
        except StoreError:
            pass

    def _idle(self, counts: dict[str, int], include_new: bool) -> str:
        """Why this run mailed nobody, and what would change that."""
        send = self.ledger.send
        assert send is not None
        newcomers = 0 if include_new else self.ledger.newcomers(list(send.lists))
        joined = (f"; {newcomers} subscriber(s) joined {', '.join(send.lists)} after this send "
                  "started: add --include-new to send to them too") if newcomers else ""
        if not counts:
            return f"nobody to send to: this send has no recipients{joined}"
        waiting = sum(counts.get(s, 0) for s in WAITING_DELIVERY_STATES)
        if waiting:
            return (f"nobody was due yet: {waiting} recipient(s) wait for a retry; run the "
                    f"same command again later{joined}")
        unknown = counts.get(DeliveryState.UNKNOWN, 0)
        done = sum(counts.values()) - unknown
        return (f"nothing left to send: {done} recipient(s) of this send are done"
                + (f", {unknown} unknown (--resend-unknown sends them again)" if unknown else "")
                + joined)

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
    signer, dkim = signer_for(settings), DkimSigner.from_settings(settings)
    editions = Editions(composed, settings, lambda edition: MessageFactory(
        edition, settings, signer, send_key="dry-run", dkim=dkim))
    count = total = 0
    with SubscriberStore(settings.database_path) as store:
        for subscriber in store.stream(lists):
            message = editions.personalise(Recipient(subscriber.id, subscriber.email,
                                                     subscriber.name, lists[0],
                                                     subscriber.fields))
            count += 1
            total += len(message.data)
            on_message(len(message.data))
    return count, total
