"""Findings -> events: prove the delivery, store each event once, keep the list clean.

A finding changes something only when it proves which delivery it is about: a return-path
token signed with our secret (`bounces+TOKEN@domain`, or the same token in a mail API's
metadata), or the Message-ID of a message we sent, found in the ledger. An address alone
proves nothing: anyone can write a bounce naming a subscriber.

Then, by kind (classify.py): hard -> the subscriber becomes `bounced`; complaint ->
`complained` (off every list); soft -> `bounced` once `soft_bounce_limit` of the address's
last `soft_bounce_sends` sends had a soft bounce; blocked -> recorded only. The event and
the change it causes are committed together, in one transaction of the subscriber store.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field

from ..audience.store import store_for
from ..audience.tokens import Signer, signer_for
from ..config import Settings
from ..errors import StoreError
from ..states import Disposition, EventKind
from .report import Finding, Parsed, event_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """The ledger row a finding is about."""

    id: int
    send_id: int
    subscriber_id: int
    email: str
    issue: str


@dataclass(frozen=True)
class Verdict:
    """What became of one finding."""

    finding: Finding
    disposition: Disposition
    delivery: Delivery | None = None
    consequence: str = ""  # what changed in the subscriber store, for the log


@dataclass
class Tally:
    """Counts over many messages or webhook events, for a command's summary line."""

    dispositions: dict[Disposition, int] = field(default_factory=dict)
    kinds: dict[EventKind, int] = field(default_factory=dict)

    def add(self, disposition: Disposition, kind: EventKind | None = None,
            count: int = 1) -> None:
        self.dispositions[disposition] = self.dispositions.get(disposition, 0) + count
        if kind is not None and disposition is Disposition.RECORDED:
            self.kinds[kind] = self.kinds.get(kind, 0) + count

    def __str__(self) -> str:
        recorded = self.dispositions.get(Disposition.RECORDED, 0)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items()))
        parts = [f"{recorded} event(s) recorded" + (f" ({kinds})" if kinds else "")]
        parts += [f"{n} {d}" for d, n in self.dispositions.items()
                  if d is not Disposition.RECORDED and n]
        return ", ".join(parts)


_DELIVERY = ("SELECT d.id, d.send_id, d.subscriber_id, d.email, s.issue FROM deliveries d "
             "JOIN sends s ON s.id = d.send_id WHERE ")


class Intake:
    """Records findings in the database of `settings`; one per process or thread."""

    def __init__(self, settings: Settings, signer: Signer | None = None) -> None:
        self.settings = settings
        self.signer = signer or signer_for(settings)
        self.store = store_for(settings)
        self._db = self.store.connection
        self._pruned = 0.0  # when old webhook nonces were last forgotten

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, parsed: Parsed) -> list[Verdict]:
        """Record every finding of one message or request; raises StoreError if the
        database stays unavailable (nothing is lost: the same report can come again)."""
        try:
            if parsed.unsubscribe:  # no finding: what it did goes on `parsed.disposition`
                parsed.disposition = self._unsubscribe(parsed.unsubscribe)
                return []
            verdicts = []
            for finding in parsed.findings:
                with self.store.transaction():
                    verdicts.append(self._record(finding))
            return verdicts
        except sqlite3.Error as exc:
            raise StoreError(f"{self.settings.database_path}: {exc}; the report was not "
                             "recorded and can be received again") from None

    def _unsubscribe(self, token: str) -> Disposition:
        """A List-Unsubscribe request by mail: the token says who and from which list, as
        the link does; the sender's address, which anyone can forge, says nothing."""
        checked = self.signer.verify_unsubscribe(token)
        if checked is None:
            log.info("unsubscribe request by mail with a token not made with our secret: "
                     "nothing changed")
            return Disposition.UNMATCHED
        if checked.is_test:
            return Disposition.IGNORED  # the mailto of a test message unsubscribes nobody
        subscriber = self.store.get_by_id(checked.subscriber_id)
        if subscriber is None or checked.list_name not in {
                m.list_name for m in self.store.memberships(checked.subscriber_id)}:
            log.info("unsubscribe request by mail for subscriber %d, who is not on %s: "
                     "nothing changed", checked.subscriber_id, checked.list_name)
            return Disposition.UNMATCHED
        self.store.unsubscribe(subscriber.email, checked.list_name,
                               reason="mailto (List-Unsubscribe)")
        log.info("unsubscribed subscriber %d from %s via mailto (List-Unsubscribe)",
                 subscriber.id, checked.list_name)
        return Disposition.UNSUBSCRIBED

    def _record(self, finding: Finding) -> Verdict:
        delivery = self.match(finding)
        if delivery is None:
            log.info("%s %s report for %r names no delivery of ours (no valid token or known "
                     "Message-ID): nothing changed", finding.source, finding.kind,
                     finding.recipient)
            return Verdict(finding, Disposition.UNMATCHED)
        key = event_key(finding.key, delivery.id)
        if self._db.execute("SELECT 1 FROM delivery_events WHERE event_key = ?",
                            (key,)).fetchone():
            return Verdict(finding, Disposition.DUPLICATE, delivery)
        consequence = self._apply(finding, delivery)
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO delivery_events (event_key, delivery_id, send_id, "
            "subscriber_id, kind, source, status, diagnostic, recipient, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, delivery.id, delivery.send_id, delivery.subscriber_id, finding.kind,
             finding.source, finding.status[:20], finding.diagnostic[:500],
             finding.recipient[:254], finding.occurred_at, time.time())).rowcount
        if not inserted:  # another intake recorded the same report meanwhile
            return Verdict(finding, Disposition.DUPLICATE, delivery)
        log.info("%s: %s %s for subscriber %d (%s)%s", delivery.issue, finding.kind,
                 finding.status or "", delivery.subscriber_id, finding.source,
                 f": {consequence}" if consequence else "")
        return Verdict(finding, Disposition.RECORDED, delivery, consequence)

    def first_time(self, provider: str, nonce: str) -> bool:
        """True if this signed request was not seen within the replay window (and remember
        it); older nonces are forgotten, since their timestamps are refused anyway."""
        now = time.time()
        try:
            if now - self._pruned > 60:
                self._db.execute("DELETE FROM webhook_nonces WHERE seen_at < ?",
                                 (now - 2 * self.settings.webhook_max_age,))
                self._pruned = now
            return self._db.execute("INSERT OR IGNORE INTO webhook_nonces (provider, nonce, "
                                    "seen_at) VALUES (?, ?, ?)",
                                    (provider, nonce[:200], now)).rowcount == 1
        except sqlite3.Error as exc:
            raise StoreError(f"{self.settings.database_path}: {exc}") from None

    def match(self, finding: Finding) -> Delivery | None:
        """The delivery a finding proves it is about, or None."""
        for token in finding.tokens:
            named = self.signer.verify_delivery(token)
            if named is not None:
                row = self._db.execute(_DELIVERY + "d.send_id = ? AND d.subscriber_id = ?",
                                       (named.send_id, named.subscriber_id)).fetchone()
                if row:
                    return Delivery(*row)
        for message_id in finding.message_ids:
            row = self._db.execute(_DELIVERY + "d.message_id = ?", (message_id,)).fetchone()
            if row:
                return Delivery(*row)
        return None

    def _apply(self, finding: Finding, delivery: Delivery) -> str:
        """Change the subscriber store as the finding's kind says; what changed."""
        what = f"{finding.status} " if finding.status else ""
        detail = f"{what}{finding.diagnostic}".strip()[:200]
        if finding.kind is EventKind.HARD:
            self.store.mark_bounced(delivery.email, f"hard bounce after {delivery.issue} "
                                                      f"({finding.source}): {detail}")
            return "now bounced, on every list"
        if finding.kind is EventKind.COMPLAINT:
            self.store.mark_complained(delivery.email, f"spam complaint about "
                                                         f"{delivery.issue} ({finding.source})")
            return "now complained: unsubscribed from every list"
        if finding.kind is EventKind.SOFT:
            sends = self._soft_sends(delivery)
            limit, window = self.settings.soft_bounce_limit, self.settings.soft_bounce_sends
            if sends >= limit > 0:
                self.store.mark_bounced(delivery.email, f"soft bounces on {sends} of the "
                                        f"last {window} sends (last: {delivery.issue}, "
                                        f"{detail})")
                return f"soft bounces on {sends} of the last {window} sends: now bounced"
            return f"soft bounces on {sends} of the last {window} sends"
        return "blocked by the receiving server's policy: not suppressed"

    def _soft_sends(self, delivery: Delivery) -> int:
        """Sends among the address's last `soft_bounce_sends` with a soft bounce, this one
        included."""
        last = [send_id for (send_id,) in self._db.execute(
            "SELECT send_id FROM deliveries WHERE subscriber_id = ? ORDER BY send_id DESC "
            "LIMIT ?", (delivery.subscriber_id, max(self.settings.soft_bounce_sends, 1)))]
        if not last:
            return 0
        marks = ",".join("?" * len(last))
        soft = {send_id for (send_id,) in self._db.execute(
            f"SELECT DISTINCT send_id FROM delivery_events WHERE subscriber_id = ? AND "
            f"kind = 'soft' AND send_id IN ({marks})", (delivery.subscriber_id, *last))}
        if delivery.send_id in last:
            soft.add(delivery.send_id)
        return len(soft)


def disposition_of(parsed: Parsed, verdicts: list[Verdict]) -> Disposition:
    """One word for what became of a whole message: the best of its findings' fates."""
    for wanted in (Disposition.RECORDED, Disposition.DUPLICATE, Disposition.UNMATCHED):
        if any(v.disposition is wanted for v in verdicts):
            return wanted
    return parsed.disposition or Disposition.NOT_A_REPORT
