"""How a running send shows itself: a progress bar on a terminal, log lines otherwise,
and signal handling that stops a run cleanly (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from .logs import LOGGER

LOG_EVERY = 10.0  # seconds between progress lines when not on a terminal
log = LOGGER.info


class Progress:
    """Counts verdicts; draws a rich progress bar on a terminal, or logs every few seconds."""

    def __init__(self, total: int, label: str, *, terminal: bool | None = None) -> None:
        self.total, self.label = total, label
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._began = time.monotonic()
        self._last_log = self._began
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bar = None
        if self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                            transient=False)
            self._task = self._bar.add_task(label, total=total, detail="")
            self._bar.start()

    def verdict(self, state: str) -> None:
        with self._lock:
            self.counts[state] = self.counts.get(state, 0) + 1
            done = sum(self.counts.values())
            now = time.monotonic()
            if self._bar is not None:
                self._bar.update(self._task, completed=done, detail=self._detail(now))
            elif now - self._last_log >= LOG_EVERY:
                self._last_log = now
                log(f"{self.label}: {done}/{self.total} handled, {self._detail(now)}")

    def _detail(self, now: float) -> str:
        sent = self.counts.get("sent", 0)
        rate = sent / max(now - self._began, 1e-6)
        others = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if s != "sent")
        return f"{sent} sent{', ' + others if others else ''}, {rate:.0f}/s"

    def event(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            log(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def stop_on_signals() -> Iterator[tuple[threading.Event, list[int]]]:
    """SIGINT/SIGTERM set the event (finish what is in hand); a second one exits at once.

    Exiting at once is safe: the journal says which messages were in flight.
    """
    stop = threading.Event()
    received: list[int] = []

    def handler(number: int, frame: FrameType | None) -> None:
        if received:
            os._exit(128 + number)
        received.append(number)
        stop.set()
        click.echo("\nstopping: finishing the messages in flight (again to quit now)",
                   err=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
