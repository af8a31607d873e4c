"""The time the send loop goes by: the wall clock in a run, a fake one in the tests.

The dispatcher reads the time and waits only through a Clock, so that a test can run a
send that spans days (backoff, give_up_after) in a fraction of a second.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait `seconds` or until `stop` is set; True if it was set."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


SYSTEM_CLOCK = SystemClock()
