"""Team quotas (`quota.maxServers`, `quota.maxGpus`) counted over running and starting servers.

One `QuotaBook` lives in the hub process. A spawn reserves its place before anything is created and
gives it back when the server stops or fails to start. Check and reserve happen under one lock with no
await in between, so two simultaneous starts can never both take the last GPU. GPUs are counted as
fractions: a partition or a capacity share of a GPU holds its share (`Launch.gpu_count`), summed exactly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction

from ..catalog.access import RequestRefused
from ..catalog.model import gpu_number, gpu_text


@dataclass(frozen=True)
class Hold:
    key: str  # "<username>/<server name>"
    team: str | None
    gpus: int | float  # a share of a GPU counts as its fraction


@dataclass(frozen=True)
class Usage:
    servers: int
    gpus: int | float


def _exact(gpus) -> Fraction:
    return Fraction(gpus or 0).limit_denominator(10000)


class QuotaBook:
    def __init__(self):
        self._holds: dict[str, Hold] = {}
        self._lock = asyncio.Lock()
        self._by_team: dict | None = None  # by_team() until the holds change

    def usage(self, team: str | None) -> Usage:
        holds = [h for h in self._holds.values() if h.team == team]
        return Usage(len(holds), gpu_number(sum((_exact(h.gpus) for h in holds), Fraction(0))))

    def by_team(self) -> dict:
        """team -> Usage of every team that holds anything, in one pass, kept until a hold changes (the launch page
        shows 20 teams' figures on every view). Read only."""
        if self._by_team is None:
            counts: dict = {}
            for h in self._holds.values():
                servers, gpus = counts.get(h.team, (0, 0))
                counts[h.team] = (servers + 1, gpus + h.gpus)
            self._by_team = {team: Usage(*c) for team, c in counts.items()}
        return self._by_team

    def holds(self) -> dict:
        return dict(self._holds)

    def _check(self, catalog, hold: Hold) -> None:
        if hold.team is None or hold.team not in catalog.teams:
            return
        team = catalog.teams[hold.team]
        others = [h for k, h in self._holds.items() if h.team == hold.team and k != hold.key]
        name = team.display_name
        if team.max_servers is not None and len(others) + 1 > team.max_servers:
            raise RequestRefused(403, f"The team '{name}' already runs {len(others)} of its {team.max_servers} allowed servers. "
                                      "Stop a server or try again later.")
        if team.max_gpus is not None and hold.gpus:
            used = sum((_exact(h.gpus) for h in others), Fraction(0))
            if used + _exact(hold.gpus) > team.max_gpus:
                left = max(team.max_gpus - used, 0)
                raise RequestRefused(403, f"The team '{name}' uses {gpu_text(used)} of its {team.max_gpus} GPUs; this environment "
                                          f"needs {gpu_text(hold.gpus)} and only {gpu_text(left)} {'is' if 0 < left <= 1 else 'are'} left. "
                                          "Choose an environment without a GPU or try again later.")

    def reserve_now(self, catalog, hold: Hold) -> None:
        """Check and reserve atomically (no await inside); RequestRefused(403) when over quota."""
        self._check(catalog, hold)
        self._holds[hold.key] = hold
        self._by_team = None

    async def reserve(self, catalog, hold: Hold) -> None:
        async with self._lock:
            self.reserve_now(catalog, hold)

    def restore(self, hold: Hold) -> None:
        """A server that was running before the hub restarted: count it without checking."""
        self._holds[hold.key] = hold
        self._by_team = None

    def release(self, key: str) -> None:
        self._holds.pop(key, None)
        self._by_team = None


