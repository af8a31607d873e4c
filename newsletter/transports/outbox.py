"""`outbox://DIR`: each message becomes an .eml file that any mail client opens.

The default transport: nothing leaves the machine, and the exact bytes that would be sent
can be inspected. Files are named after the Message-ID, so a retry rewrites the same file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import SplitResult, unquote

from ..config import Settings
from ..envelope import Personalised
from .base import Result, Status, Transport

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxTransport(Transport):
    schemes = ("outbox",)
    max_batch = 1000
    default_batch = 100

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_url(cls, url: SplitResult, settings: Settings) -> OutboxTransport:
        # outbox://outbox and outbox:///abs/path both work; relative to newsletter.toml
        raw = unquote(url.netloc + url.path) or "outbox"
        return cls(settings.path(raw))

    @property
    def description(self) -> str:
        return f"outbox {self.folder}"

    def send(self, batch: Sequence[Personalised]) -> list[Result]:
        self.folder.mkdir(parents=True, exist_ok=True)
        results = []
        for message in batch:
            name = _UNSAFE.sub("_", message.message_id.strip("<>")) + ".eml"
            path = self.folder / name
            temporary = path.with_suffix(".eml.part")
            with open(temporary, "wb") as handle:
                handle.write(message.data)
            os.replace(temporary, path)
            results.append(Result(Status.SENT, f"written to {path}"))
        return results
