"""What keeps the sign-up form from being used against people: limits and a proof of work.

The store already sends one confirmation per address per interval, so a flood naming one
victim sends them one mail. Here: a limit per client address (a flood naming many people
from one machine), and an optional ALTCHA challenge (a SHA-256 proof of work the browser
solves, checked with the `altcha` library; no third-party service is involved).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import altcha

HONEYPOT = "website"  # a field people never see; bots fill it in
MAX_CLIENTS = 100_000  # remembered client addresses, at most


class ClientLimit:
    """At most `per_hour` sign-ups from one client address in a sliding hour (0: none)."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        if not self.per_hour:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) >= MAX_CLIENTS:  # forget the quiet ones first
                self._seen = {c: t for c, t in self._seen.items() if t[-1] > now - 3600}
            times = [t for t in self._seen.get(client, ()) if t > now - 3600]
            allowed = len(times) < self.per_hour
            if allowed:
                times.append(now)
            self._seen[client] = times
            return allowed


class ProofOfWork:
    """ALTCHA challenges signed with the newsletter's secret; each solution counts once."""

    def __init__(self, secret: bytes, max_number: int, lifetime: float) -> None:
        self._key = secret
        self.max_number = max(1000, max_number)
        self.lifetime = lifetime
        self._used: dict[str, float] = {}  # signature -> when it expires
        self._lock = threading.Lock()

    def challenge(self) -> str:
        """The challenge as JSON, for the form's data-altcha attribute."""
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.lifetime)
        made = altcha.create_challenge_v1(hmac_key=self._key, max_number=self.max_number,
                                          expires=expires)
        return json.dumps(made.to_dict())

    def verify(self, payload: str) -> bool:
        """True once for a solved, unexpired challenge of ours."""
        try:
            ok, _ = altcha.verify_solution_v1(payload, self._key, check_expires=True)
            signature = str(altcha.PayloadV1.from_base64(payload).signature)
        except (ValueError, TypeError, KeyError, AttributeError):  # not even base64 JSON
            return False
        if not ok:
            return False
        now = time.time()
        with self._lock:
            self._used = {s: t for s, t in self._used.items() if t > now}
            if signature in self._used:
                return False
            self._used[signature] = now + self.lifetime
        return True
