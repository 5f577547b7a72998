"""Throttling of failed local sign-ins, in hub memory.

Three counters, each over a sliding window (default 15 minutes):

- per (account, client address): after `user_failures` failures (default 5) the pair is locked for
  30 s, doubling with every further failure, at most 15 minutes. A student who mistypes a few times
  waits half a minute; a guessing loop against one account gets a handful of tries per quarter hour.
- per account, from any address: the same backoff after `user_failures * 4` failures (default 20), so
  a guessing loop spread over many addresses still slows down.
- per client address, over all accounts: `address_failures` failures (default 100) lock the address until
  the oldest failure leaves the window. High enough for a classroom of 60 behind one NAT (a mistype or
  two each), low enough that guessing across many accounts from one address stops quickly.

A success clears the account's counters (not the address's: a valid account must not buy more guesses).
The state lives in hub memory: a hub restart forgets it, which is acceptable for a limiter.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleSettings:
    user_failures: int
    address_failures: int
    window_seconds: float
    first_lock_seconds: float = 30.0  # the back-off, not a values setting
    max_lock_seconds: float = 900.0

    @classmethod
    def from_values(cls, throttle: dict) -> ThrottleSettings:
        """From `auth.local.throttle` as the loader returns it (the schema's defaults filled in)."""
        return cls(throttle["userFailures"], throttle["addressFailures"], throttle["windowMinutes"] * 60.0)


class LoginThrottle:
    MAX_KEYS = 100_000

    def __init__(self, settings: ThrottleSettings, clock=time.monotonic):
        self.settings = settings
        self.clock = clock
        self._failures: dict[str, deque] = {}

    # -- counters -------------------------------------------------------------------------------
    def _recent(self, key: str, now: float) -> deque:
        q = self._failures.get(key)
        if q is None:
            return deque()
        cutoff = now - self.settings.window_seconds
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def _backoff(self, q: deque, free: int, now: float) -> float:
        if len(q) < free:
            return 0.0
        lock = min(self.settings.first_lock_seconds * 2 ** (len(q) - free), self.settings.max_lock_seconds)
        return max(0.0, q[-1] + lock - now)

    def retry_after(self, user: str, address: str) -> int:
        """Seconds until this account may try again from this address (0: go ahead)."""
        now = self.clock()
        s = self.settings
        waits = [
            self._backoff(self._recent(f"p\0{user}\0{address}", now), s.user_failures, now),
            self._backoff(self._recent(f"u\0{user}", now), s.user_failures * 4, now),
        ]
        per_address = self._recent(f"a\0{address}", now)
        if len(per_address) >= s.address_failures:
            waits.append(per_address[len(per_address) - s.address_failures] + s.window_seconds - now)
        wait = max(waits)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        if len(self._failures) > self.MAX_KEYS:
            self._prune(now)
        for key in (f"p\0{user}\0{address}", f"u\0{user}", f"a\0{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop(f"p\0{user}\0{address}", None)
        self._failures.pop(f"u\0{user}", None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
