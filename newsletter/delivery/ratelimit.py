"""One process-wide rate limit, shared by every connection of a run.

A token bucket holds the per-second rate; hourly and daily budgets count what was sent in
the trailing window (seeded from the ledger, so they hold across runs). When a server
throttles, the rate is halved from what was actually achieved and grows back slowly.

One slow-down is one signal: requests that were let through before it (the other
connections' requests in flight at that moment) may come back throttled too, and halving
again for each of them would slow the run far below what the server asked for. So each
slow-down starts a new `generation`, and a refusal of a request admitted in an earlier
generation only extends the pause.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

RECOVERY_STEP = 1.1  # the throttled rate grows by 10 % ...
RECOVERY_EVERY = 5.0  # ... every this many seconds without throttling
MEASURE_FOR = 0.5  # seconds of sending before the achieved rate means something


class RateLimiter:
    def __init__(self, per_second: float = 0.0, per_hour: int = 0, per_day: int = 0, *,
                 sent_last_hour: int = 0, sent_last_day: int = 0,
                 clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.configured = per_second or None
        self.rate: float | None = self.configured
        self.per_hour, self.per_day = per_hour, per_day
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._tokens = 1.0
        self._last = now
        self._paused_until = now
        self._last_throttle = 0.0
        self.generation = 0  # slow-downs so far
        self._recent: deque[float] = deque(maxlen=200)  # times of recent sends
        # (time, count) per started minute, for the hourly and daily budgets
        self._hour: deque[tuple[float, int]] = deque([(now, sent_last_hour)])
        self._day: deque[tuple[float, int]] = deque([(now, sent_last_day)])

    def acquire(self, count: int, stop: threading.Event) -> int | None:
        """Wait until `count` messages may go: the generation they go in, or None if `stop`
        was set meanwhile."""
        while True:
            with self._lock:
                wait = self._wait_time(count)
                if wait <= 0:
                    self._take(count)
                    return self.generation
            if stop.wait(min(wait, 1.0)):
                return None

    def _wait_time(self, count: int) -> float:
        now = self._clock()
        self._recover(now)
        if now < self._paused_until:
            return self._paused_until - now
        for window, limit, span in ((self._hour, self.per_hour, 3600.0),
                                    (self._day, self.per_day, 86400.0)):
            if limit:
                while window and window[0][0] <= now - span:
                    window.popleft()
                if sum(c for _, c in window) + count > limit:
                    return (window[0][0] + span - now) if window else 1.0
        if self.rate is None:
            return 0.0
        self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._last) * self.rate)
        self._last = now
        return 0.0 if self._tokens >= min(count, max(1.0, self.rate)) else \
            (count - self._tokens) / self.rate

    def _take(self, count: int) -> None:
        now = self._clock()
        if self.rate is not None:
            self._tokens -= count
        self._recent.extend([now] * min(count, 200))
        for window in (self._hour, self._day):
            if window and window[-1][0] > now - 60:
                window[-1] = (window[-1][0], window[-1][1] + count)
            else:
                window.append((now, count))

    def throttle(self, pause: float | None = None, admitted: int | None = None) -> float | None:
        """The server asked to slow down: halve the achieved rate and pause a moment.

        Returns the new rate, or `math.inf` if the run is unlimited and too young to have a
        rate to halve (then it only pauses). `admitted` is the `generation` when the refused
        request was let through: if the rate has been lowered since, only the pause is
        extended and None is returned.
        """
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + (pause if pause else 1.0))
            if admitted is not None and admitted < self.generation:
                return None
            self.generation += 1
            achieved = self._achieved(now)
            if not achieved and self.rate is None:  # too early to tell: the pause is the answer
                return math.inf
            current = min(self.rate or achieved, achieved) if achieved else self.rate
            self.rate = max(0.5, current / 2)
            self._tokens = 0.0
            self._last = now
            self._last_throttle = now
            return self.rate

    def _achieved(self, now: float) -> float:
        recent = [t for t in self._recent if t > now - 10]
        if len(recent) < 2 or now - recent[0] < MEASURE_FOR:  # too few to tell a rate
            return 0.0
        return len(recent) / max(now - recent[0], 0.1)

    def _recover(self, now: float) -> None:
        if self.rate is None or not self._last_throttle:
            return
        if now - self._last_throttle >= RECOVERY_EVERY:
            self._last_throttle = now
            grown = self.rate * RECOVERY_STEP
            if self.configured is not None:
                self.rate = min(grown, self.configured)
            elif grown > 10_000:
                self.rate, self._last_throttle = None, 0.0
            else:
                self.rate = grown
