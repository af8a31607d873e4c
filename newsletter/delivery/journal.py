"""The in-flight journal: an append-only file that says which messages were handed over.

A ledger commit per message would cost more than the message itself, so the ledger claims
recipients in batches and this journal records, one short line each, the moment a message
is handed to the transport and the verdict that came back. A line is one `write(2)` to a
file opened with O_APPEND: it survives the process being killed. On the next run the
journal is replayed into the ledger: a message handed over without a verdict is `unknown`
(never silently re-sent), one never handed over goes back to `pending`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..states import DeliveryState

BEGUN = "begun"
ROTATE_BYTES = 4_000_000


@dataclass(frozen=True)
class Verdict:
    delivery_id: int
    state: DeliveryState  # sent, failed, deferred, unknown, or pending again
    reply: str = ""
    next_attempt_at: float | None = None
    failed_since: float | None = None  # when the first temporary failure happened
    at: float = 0.0
    suppress: bool = False  # a hard bounce: the address must never be mailed again
    message_id: str = ""  # the Message-ID handed over: a bounce may quote only this

    def encode(self) -> bytes:
        return (json.dumps([self.delivery_id, self.state, self.reply, self.next_attempt_at,
                            self.failed_since, self.at, self.suppress, self.message_id],
                           ensure_ascii=True) + "\n").encode()


@dataclass
class Replay:
    """What a journal says, event by event: the last verdict of each message, and the
    messages whose last event was a hand-over (in flight when the run stopped)."""

    verdicts: dict[int, Verdict] = field(default_factory=dict)
    without_verdict: set[int] = field(default_factory=set)


class Journal:
    """Append-only; `rotate` rewrites it with only what is still in flight."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def begun(self, delivery_ids: list[int]) -> None:
        self._write("".join(f"{i} {BEGUN}\n" for i in delivery_ids).encode())

    def verdict(self, *verdicts: Verdict) -> None:
        self._write(b"".join(verdict.encode() for verdict in verdicts))

    def _write(self, data: bytes) -> None:
        os.write(self._fd, data)
        self._size += len(data)

    def needs_rotation(self) -> bool:
        return self._size > ROTATE_BYTES

    def rotate(self, in_flight: set[int]) -> None:
        """Replace the file by one holding only the messages still in flight.

        Call only after every verdict written so far is committed to the ledger.
        """
        temporary = self.path.with_suffix(self.path.suffix + ".new")
        data = "".join(f"{i} {BEGUN}\n" for i in sorted(in_flight)).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._size = len(data)

    def close(self, *, remove: bool = False) -> None:
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def replay(path: Path) -> Replay:
    """Read a journal left by an earlier run; a torn last line (killed mid-write) is ignored."""
    result = Replay()
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return result
    for line in text.splitlines():
        if line.endswith(f" {BEGUN}"):
            head = line.split(" ", 1)[0]
            if head.isdigit():  # a retry in flight overrides an earlier verdict
                result.without_verdict.add(int(head))
                result.verdicts.pop(int(head), None)
            continue
        try:
            fields = json.loads(line)
            verdict = Verdict(fields[0], DeliveryState(fields[1]), *fields[2:])
        except (ValueError, TypeError, IndexError):
            continue
        delivery_id = verdict.delivery_id
        result.verdicts[delivery_id] = verdict
        result.without_verdict.discard(delivery_id)
    return result
