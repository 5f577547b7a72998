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

Concurrency (issue 23): a password check takes a quarter of a second, so counting a failure only after it
let 50 simultaneous guesses all be checked. An attempt is now *reserved* before its check (`reserve`): checks
in flight count like failures, so no more run at once for an account and address than its remaining
allowance, and the rest are answered 429 at once. And the checks of one address run in turn, at most
`CheckQueue.LIMIT` waiting (`CheckQueue`): a burst from one address holds one password-check thread, never the
whole pool, so other people's sign-ins wait behind at most one of its checks.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from contextlib import asynccontextmanager
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
        self._pending: Counter = Counter()  # reserved attempts whose check is still running, per key

    @staticmethod
    def _keys(user: str, address: str) -> tuple:
        return f"p\0{user}\0{address}", f"u\0{user}", f"a\0{address}"

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

    def _backoff(self, q: deque, pending: int, free: int, now: float) -> float:
        if len(q) + pending < free:
            return 0.0
        if len(q) < free:
            return 1.0  # only checks in flight fill the allowance: they decide, ask again in a second
        lock = min(self.settings.first_lock_seconds * 2 ** (len(q) - free), self.settings.max_lock_seconds)
        return max(0.0, q[-1] + lock - now)

    def retry_after(self, user: str, address: str) -> int:
        """Seconds until this account may try again from this address (0: go ahead); attempts reserved and
        still being checked count as failures."""
        now = self.clock()
        s = self.settings
        pair, account, addr = self._keys(user, address)
        waits = [
            self._backoff(self._recent(pair, now), self._pending[pair], s.user_failures, now),
            self._backoff(self._recent(account, now), self._pending[account], s.user_failures * 4, now),
        ]
        per_address, pending = self._recent(addr, now), self._pending[addr]
        if len(per_address) >= s.address_failures:
            waits.append(per_address[len(per_address) - s.address_failures] + s.window_seconds - now)
        elif len(per_address) + pending >= s.address_failures:
            waits.append(1.0)
        wait = max(waits)
        return math.ceil(wait) if wait > 0 else 0

    def reserve(self, user: str, address: str) -> int:
        """Take one attempt of the allowance before checking the password: 0 (reserved; `release` it once the
        check is done, then report `failed` or `succeeded`) or the seconds to wait (nothing reserved)."""
        wait = self.retry_after(user, address)
        if not wait:
            self._pending.update(self._keys(user, address))
        return wait

    def release(self, user: str, address: str) -> None:
        self._pending.subtract(self._keys(user, address))
        for key in self._keys(user, address):
            if self._pending[key] <= 0:
                del self._pending[key]

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        if len(self._failures) > self.MAX_KEYS:
            self._prune(now)
        for key in self._keys(user, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str, address: str) -> None:
        pair, account, _ = self._keys(user, address)
        self._failures.pop(pair, None)
        self._failures.pop(account, None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)


class CheckQueue:
    """Password checks of one client address run one at a time, at most LIMIT waiting or running.

    The checks share a pool of cores - 1 threads (passwords.py). Without turns, a burst of guesses from one
    address (spread over many accounts, which the per-account limits allow) filled the pool's queue and another
    person's sign-in waited behind all of it (15.6 s behind 100 guesses). In turn, the burst has one check in
    the pool at a time. LIMIT bounds the waiting line: a classroom behind one NAT queues 20 sign-ins (about
    5 s of checks), the rest hear 429 with a short Retry-After and try again.
    """

    LIMIT = 20

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self._locks: dict[str, asyncio.Lock] = {}
        self._count: Counter = Counter()

    def retry_after(self, address: str) -> int:
        """0 when a check from this address may queue now, else seconds to wait."""
        waiting = self._count[address]
        return 0 if waiting < self.limit else max(1, waiting // 4)

    @asynccontextmanager
    async def turn(self, address: str):
        self._count[address] += 1
        lock = self._locks.setdefault(address, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            self._count[address] -= 1
            if not self._count[address]:
                del self._count[address]
                self._locks.pop(address, None)
