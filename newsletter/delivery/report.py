"""What `newsletter status` shows about a send: counts per list and state, the recipients
who failed or whose outcome is unknown, and how fast it went."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .ledger import SendRecord, SendVersion, find_send, find_versions


@dataclass(frozen=True)
class Summary:
    """Everything `newsletter status` shows about one send."""

    send: SendRecord
    by_list: dict[str, dict[str, int]]
    failed: list[tuple[str, str]]  # (address, the server's reply)
    unknown: list[tuple[str, str]]
    deferred: list[tuple[str, float | None, str]]  # (address, next attempt, reply)
    first_sent_at: float | None
    last_sent_at: float | None
    versions: list[SendVersion]  # more than one: resumed with --new-version

    @property
    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for states in self.by_list.values():
            for state, count in states.items():
                total[state] = total.get(state, 0) + count
        return total

    @property
    def rate(self) -> float | None:
        """Messages accepted per second, between the first and the last acceptance."""
        sent = self.counts.get("sent", 0)
        if sent < 2 or not self.first_sent_at or not self.last_sent_at:
            return None
        return sent / max(self.last_sent_at - self.first_sent_at, 1e-3)


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

    def rows(state: str, columns: str) -> list:  # type: ignore[type-arg]
        return connection.execute(f"SELECT {columns} FROM deliveries WHERE send_id = ? AND "
                                  f"state = ? ORDER BY id LIMIT ?",
                                  (send.id, state, limit)).fetchall()

    first, last = connection.execute(
        "SELECT min(updated_at), max(updated_at) FROM deliveries WHERE send_id = ? AND "
        "state = 'sent'", (send.id,)).fetchone()
    return Summary(send, by_list, rows("failed", "email, reply"), rows("unknown", "email, reply"),
                   rows("deferred", "email, next_attempt_at, reply"), first, last,
                   find_versions(connection, send.id))
