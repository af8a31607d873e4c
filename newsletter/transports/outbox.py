"""`outbox://DIR`: each message becomes an .eml file that any mail client opens.

The default transport: nothing leaves the machine, and the exact bytes that would be sent
can be inspected. Files are named after the Message-ID, so a retry rewrites the same file.

A batch is written in two steps, every message to a `.part` file and then each renamed
into place, so that a full disk or a folder that cannot be written fails the batch before
any message of it is in the outbox: the run stops with the recipients still pending, and
the same command writes them once there is room.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from urllib.parse import SplitResult, unquote

from ..config import Settings
from ..envelope import Personalised
from ..errors import TransportError
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
        paths = [self.folder / (_UNSAFE.sub("_", m.message_id.strip("<>")) + ".eml")
                 for m in batch]
        written: list[Path] = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for message, path in zip(batch, paths, strict=True):
                temporary = path.with_suffix(".eml.part")
                with open(temporary, "wb") as handle:
                    written.append(temporary)
                    handle.write(message.data)
        except OSError as exc:
            for temporary in written:
                with suppress(OSError):
                    temporary.unlink()
            raise TransportError(f"outbox {self.folder}: cannot write messages "
                                 f"({exc.strerror or exc}); none of the {len(batch)} in hand "
                                 "was written, make room or fix the folder",
                                 provider="outbox") from None
        results = []
        for temporary, path in zip(written, paths, strict=True):
            try:
                os.replace(temporary, path)
            except OSError as exc:  # the earlier ones are in place: these are not
                with suppress(OSError):
                    temporary.unlink()
                results.append(Result(Status.DEFERRED, f"outbox {self.folder}: cannot write "
                                                       f"{path.name} ({exc.strerror or exc})"))
                continue
            results.append(Result(Status.SENT, f"written to {path}"))
        return results
