"""`bounces receive`: one message from the mail server on standard input (a pipe).

The message is written to a spool file as it is read, so that memory holds only the
first MAX_PARSED bytes, whatever the size; it is parsed, recorded, and then either
deleted (its event is in the database, or it changes nothing) or kept in `keep_dir`
(default `bounces/` beside newsletter.toml) for a person: `not-a-report/`, `unmatched/`,
`auto-reply/`. Nothing is lost: when the database is unavailable the command fails with
EX_TEMPFAIL, and the mail server keeps the message and tries again.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..config import Settings
from ..states import Disposition, EventSource
from .intake import Intake, Verdict, disposition_of
from .parse import MAX_PARSED, parse_message

CHUNK = 1 << 16
DONE = (Disposition.RECORDED, Disposition.DUPLICATE, Disposition.IGNORED,
        Disposition.UNSUBSCRIBED)


@dataclass(frozen=True)
class Received:
    disposition: Disposition
    verdicts: list[Verdict]
    summary: str
    size: int
    kept: Path | None = None  # where the message was kept, if it was


def receive(settings: Settings, stream: BinaryIO, *, envelope_recipient: str = "",
            intake: Intake | None = None) -> Received:
    """Read one message from `stream`, record what it reports, keep it if a person must."""
    folder = settings.path(settings.keep_dir)
    spool_dir = folder / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    spool = spool_dir / f"{os.getpid()}-{secrets.token_hex(6)}.eml"
    try:
        head, size = _spool(stream, spool)
        parsed = parse_message(head, EventSource.PIPE, envelope_recipient=envelope_recipient)
        own = intake is None
        intake = intake or Intake(settings)
        try:
            verdicts = intake.record(parsed)
        finally:
            if own:
                intake.close()
        disposition = disposition_of(parsed, verdicts)
        kept = None
        if disposition not in DONE:
            kept = _keep(spool, folder / str(disposition))
        return Received(disposition, verdicts, parsed.summary, size, kept)
    finally:
        spool.unlink(missing_ok=True)


def _spool(stream: BinaryIO, spool: Path) -> tuple[bytes, int]:
    """Copy the stream to `spool`; the first MAX_PARSED bytes, and the size."""
    head = bytearray()
    size = 0
    fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
            if len(head) < MAX_PARSED:
                head += chunk[:MAX_PARSED - len(head)]
    return bytes(head), size


def _keep(spool: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}-{secrets.token_hex(4)}.eml"
    os.link(spool, target)
    return target
