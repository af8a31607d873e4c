"""What `newsletter status` shows about a send: counts per list, edition and state, the
recipients who failed or whose outcome is unknown, how fast it went, and what came back
afterwards (bounces, blocks and complaints, with the rates mailbox providers judge senders
by)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from .sends import SendRecord, SendVersion, find_send, find_versions

# Gmail's bulk-sender guidelines: keep the spam rate below 0.1%, never reach 0.3%.
COMPLAINT_WARNING, COMPLAINT_LIMIT = 0.001, 0.003
BOUNCE_WARNING = 0.02  # a list that bounces more than this needs cleaning


@dataclass(frozen=True)
class Returns:
    """What reports said after the messages were accepted, counted once per recipient
    (a recipient with a hard and a soft bounce counts as hard)."""

    accepted: int  # sent: the server took the message
    refused: int  # failed: refused while sending (counts as bounced in the bounce rate)
    hard: int = 0
    soft: int = 0
    blocked: int = 0
    complained: int = 0

    @property
    def delivered(self) -> int:
        return max(self.accepted - self.hard - self.soft - self.blocked, 0)

    @property
    def bounce_rate(self) -> float | None:
        """(refused while sending + hard + soft) / (accepted + refused)."""
        attempted = self.accepted + self.refused
        return (self.refused + self.hard + self.soft) / attempted if attempted else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complained / self.delivered if self.delivered else None

    @property
    def warnings(self) -> list[str]:
        found = []
        complaints, bounces = self.complaint_rate, self.bounce_rate
        if complaints is not None and complaints >= COMPLAINT_LIMIT:
            found.append(f"complaint rate {complaints:.2%} is at or above Gmail's limit of "
                         f"{COMPLAINT_LIMIT:.1%}: Gmail may refuse or filter your mail; send "
                         "only to people who asked for it, and make unsubscribing easy")
        elif complaints is not None and complaints >= COMPLAINT_WARNING:
            found.append(f"complaint rate {complaints:.2%} is above the {COMPLAINT_WARNING:.1%}"
                         " Gmail asks bulk senders to stay below")
        if bounces is not None and bounces >= BOUNCE_WARNING:
            found.append(f"bounce rate {bounces:.1%} is {BOUNCE_WARNING:.0%} or more: the list "
                         "has many dead addresses; check where it came from")
        if self.blocked:
            found.append(f"{self.blocked} message(s) blocked by the receiving servers' policy: "
                         "a reputation or authentication problem (SPF, DKIM, DMARC), not the "
                         "addresses'; see the diagnostics with newsletter subscribers show")
        return found


def returns(connection: sqlite3.Connection, send_id: int, counts: dict[str, int]) -> Returns:
    """Count the deliveries of a send by the worst report that came back about them."""
    tally = {"hard": 0, "soft": 0, "blocked": 0, "complaint": 0}
    for kinds, count in connection.execute(
            "SELECT kinds, count(*) FROM (SELECT group_concat(DISTINCT kind) AS kinds FROM "
            "delivery_events WHERE send_id = ? GROUP BY delivery_id) GROUP BY kinds",
            (send_id,)):
        found = set(kinds.split(","))
        if "complaint" in found:
            tally["complaint"] += count
        worst = next((k for k in ("hard", "soft", "blocked") if k in found), None)
        if worst:
            tally[worst] += count
    return Returns(counts.get("sent", 0), counts.get("failed", 0), tally["hard"],
                   tally["soft"], tally["blocked"], tally["complaint"])


@dataclass(frozen=True)
class Sending:
    """How long the runs of a send took, counting neither the gaps between runs nor the
    time since the last one: a batch of 500 accepted at one instant is still 500 messages
    over the time its run took to build and hand them over."""

    runs: int
    sent: int  # accepted during those runs
    seconds: float  # from each run's start to its end, or to its last acceptance

    @property
    def rate(self) -> float | None:
        return self.sent / self.seconds if self.sent and self.seconds > 0 else None


def sending(connection: sqlite3.Connection, send_id: int) -> Sending:
    """Sum each run's acceptances and duration; a run that died ends at its last one."""
    runs = connection.execute("SELECT started_at, finished_at FROM send_runs WHERE send_id = ? "
                              "ORDER BY id", (send_id,)).fetchall()
    total_sent, seconds = 0, 0.0
    for n, (started, finished) in enumerate(runs):
        until = finished if finished is not None else \
            runs[n + 1][0] if n + 1 < len(runs) else float("inf")
        sent, last = connection.execute(
            "SELECT count(*), max(updated_at) FROM deliveries WHERE send_id = ? AND "
            "state = 'sent' AND updated_at >= ? AND updated_at <= ?",
            (send_id, started, until)).fetchone()
        if sent:
            total_sent += sent
            seconds += (finished if finished is not None else last) - started
    return Sending(len(runs), total_sent, seconds)


@dataclass(frozen=True)
class Summary:
    """Everything `newsletter status` shows about one send."""

    send: SendRecord
    by_list: dict[str, dict[str, int]]
    failed: list[tuple[str, str]]  # (address, the server's reply)
    unknown: list[tuple[str, str]]
    deferred: list[tuple[str, float | None, str]]  # (address, next attempt, reply)
    sending: Sending
    returns: Returns
    versions: list[SendVersion]  # more than one: resumed with --new-version
    by_edition: dict[str, dict[str, int]] = field(default_factory=dict)  # messages built

    @property
    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for states in self.by_list.values():
            for state, count in states.items():
                total[state] = total.get(state, 0) + count
        return total

    @property
    def rate(self) -> float | None:
        """Messages accepted per second while a run was sending."""
        return self.sending.rate


def summarise(connection: sqlite3.Connection, issue: str, limit: int = 1000) -> Summary | None:
    """The state of the send of `issue`, or None if it was never sent to a list."""
    send = find_send(connection, issue)
    if send is None:
        return None
    by_list: dict[str, dict[str, int]] = {}
    for list_name, state, count in connection.execute(
            "SELECT list_name, state, count(*) FROM deliveries WHERE send_id = ? "
            "GROUP BY list_name, state ORDER BY list_name, state", (send.id,)):
        by_list.setdefault(list_name, {})[state] = count
    by_edition: dict[str, dict[str, int]] = {}
    for edition, state, count in connection.execute(
            "SELECT edition, state, count(*) FROM deliveries WHERE send_id = ? AND edition "
            "IS NOT NULL GROUP BY edition, state ORDER BY edition, state", (send.id,)):
        by_edition.setdefault(edition, {})[state] = count

    def rows(state: str, columns: str) -> list:  # type: ignore[type-arg]
        return connection.execute(f"SELECT {columns} FROM deliveries WHERE send_id = ? AND "
                                  f"state = ? ORDER BY id LIMIT ?",
                                  (send.id, state, limit)).fetchall()

    counts: dict[str, int] = {}
    for states in by_list.values():
        for state, count in states.items():
            counts[state] = counts.get(state, 0) + count
    return Summary(send, by_list, rows("failed", "email, reply"), rows("unknown", "email, reply"),
                   rows("deferred", "email, next_attempt_at, reply"), sending(connection, send.id),
                   returns(connection, send.id, counts), find_versions(connection, send.id),
                   by_edition)
