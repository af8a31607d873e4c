"""`memory://`: keeps messages in a list. For programs embedding the package and for tests."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import SplitResult

from ..config import Settings
from ..envelope import Personalised
from .base import Result, Status, Transport


class MemoryTransport(Transport):
    schemes = ("memory",)
    max_batch = 1000
    default_batch = 100

    def __init__(self) -> None:
        self.sent: list[Personalised] = []

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> MemoryTransport:
        return cls()

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        self.sent.extend(batch)
        return [Result(Status.SENT, "kept in memory") for _ in batch]
