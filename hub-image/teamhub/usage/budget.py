"""Team budgets (`quota.gpuHours`, `quota.cpuHours`): rolling windows over the usage records.

Everything counts only the records of the budget's kind: a GPU budget their GPUs, a CPU budget their CPU
cores; a record straddling the window's start counts for its part inside. The sums come from the store's
in-memory ledger (usage/ledger.py), so a check reads no database on the hub's event loop.

At start (`check`, run in `TeamhubMixin.teamhub_apply` with no await between it and opening the start's
record, so simultaneous starts each see the others): refused (`Exhausted`) when the budget cannot give this
start at least MIN_SECONDS with every running server of the team (and this one) consuming at its rate;
otherwise the session's deadline is capped at the moment the budget would run out. The refusal's "Budget
returns at" (`returns_at`) reads the team's records of that kind, so the caller computes it in a worker
thread (`explain`). While running (`over`, at every check of sessions.budgetCheckSeconds): a team whose
budget ran out has its servers stopped, end reason `budget`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..catalog.access import RequestRefused
from .ledger import amount
from .tables import TABLE

DAY = 86400
MIN_SECONDS = 60  # a start the budget cannot give this long is refused: it would be stopped before it is up


@dataclass(frozen=True)
class Standing:
    budget: object  # catalog.Budget
    used: float  # hours in the window, running servers counted up to now
    rate: float  # GPUs (or CPU cores) the team's open records hold now, excluding `exclude`

    @property
    def left(self) -> float:
        return max(self.budget.amount - self.used, 0.0)


class Exhausted(RequestRefused):
    """A start the budget cannot give MIN_SECONDS; `explain` adds when the budget returns."""

    def __init__(self, team, standing: Standing, need: float, now: float):
        super().__init__(403, sentence(team, standing))
        self.team, self.standing, self.need, self.now = team, standing, need, now


def hours(value: float) -> str:
    """Hours as a person reads them: 0.0005 stays 0.0005 (":.1f" made a used-up tiny budget "0.0 of 0.0005")."""
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def sentence(team, st: Standing) -> str:
    b = st.budget
    return f"The team '{team.display_name}' has used {hours(st.used)} of its {b.amount:g} {b.unit} in the last {b.window_days} days."


def standing(s, team: str, budget, now: float, exclude: str | None = None) -> Standing:
    """`s`: the hub's Store."""
    used, rate = s.ledger.use(team, budget.kind, budget.window_days, now, exclude)
    return Standing(budget, used, rate)


def _need(budget, gpus: float, cpu: float | None) -> float:
    return amount(budget.kind, gpus, cpu)


def returns_at(engine, team: str, budget, need: float, now: float) -> float | None:
    """The earliest moment enough of the team's usage of this kind has left the window for a start drawing `need`
    to get MIN_SECONDS, the usage up to now staying as it is (running servers are stopped when it runs out).
    None when no record of this kind is in the window (nothing will come back: the budget is too small)."""
    from sqlalchemy import text

    window = budget.window_days * DAY
    col = "gpus" if budget.kind == "gpu" else "COALESCE(cpu, 0)"
    with engine.connect() as con:
        rows = [(max(float(s), now - window), min(float(e), now), float(a)) for s, e, a in con.execute(text(
            f"SELECT started, COALESCE(ended, :now), {col} FROM {TABLE} WHERE team = :team AND started < :now "
            f"AND COALESCE(ended, :now) > :start AND {col} > 0 AND (end_reason IS NULL OR end_reason != 'failed-start')"),
            {"team": team, "now": now, "start": now - window})]
    rows = [r for r in rows if r[1] > r[0]]
    if not rows:
        return None

    def used(t: float) -> float:  # unit-seconds of those records inside [t - window, t]
        return sum(max(e - max(s, t - window), 0.0) * a for s, e, a in rows)

    target = budget.amount * 3600 - need * MIN_SECONDS  # the use that leaves a minute for this start
    if target < 0:
        return None
    lo, hi = now, max(e for _, e, _ in rows) + window
    while hi - lo > 0.5:  # used() only falls as t grows; to the second the sentence shows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if used(mid) > target else (lo, mid)
    return hi


# (team, kind, days, need) -> (ledger changes, now, the computation): the refusals of a burst of starts share one
_returns: dict = {}


async def explain(s, exc: Exhausted) -> RequestRefused:
    """The refusal with when the budget returns (computed in a worker thread: it reads the team's records; shared
    by the refusals that follow while no record opened or closed, for up to a minute)."""
    from ..clock import iso

    b, loop = exc.standing.budget, asyncio.get_running_loop()
    key, changes = (id(s), exc.team.key, b.kind, b.window_days, exc.need), s.ledger.changes
    hit = _returns.get(key)
    if (hit is None or hit[0] != changes or not (hit[1] <= exc.now < hit[1] + 60) or hit[2].cancelled()
            or hit[2].get_loop() is not loop):
        future = loop.run_in_executor(None, returns_at, s.engine, exc.team.key, b, exc.need, exc.now)
        hit = _returns[key] = (changes, exc.now, future)
    when = await asyncio.shield(hit[2])
    back = f"Budget returns at {iso(when)} as older usage leaves the window" if when else "Ask an admin for more"
    return RequestRefused(403, f"{exc.message} {back}. Choose an environment that does not draw on this budget, or try again later.")


def check(s, team, gpus: float, cpu: float | None, server: str, now: float) -> float | None:
    """Refuse (Exhausted, a 403) when a budget of `team` (a catalog.Team) this start draws on cannot give it
    MIN_SECONDS; else the capped deadline (epoch seconds) or None when no budget limits it. `s`: the hub's Store."""
    cap = None
    for budget in team.budgets:
        need = _need(budget, gpus, cpu)
        if need <= 0:
            continue
        st = standing(s, team.key, budget, now, exclude=server)
        end = now + st.left * 3600 / (st.rate + need)
        if end - now < MIN_SECONDS:
            raise Exhausted(team, st, need, now)
        cap = end if cap is None else min(cap, end)
    return cap


def over(s, team, now: float):
    """The first budget of `team` that is used up while its servers consume it; None when all have hours left."""
    for budget in team.budgets:
        st = standing(s, team.key, budget, now)
        if st.rate > 0 and st.left <= 0:
            return st
    return None


# (team, its budgets' window sums) -> (its budgets, the overview) of a team whose use does not move with the clock
# (Ledger.still): the launch page shows 20 teams' budgets on every view, and most teams run nothing most of the time.
_still: dict = {}
MAX_STILL = 4096


def overview(s, team, now: float) -> list[dict]:
    """For the launch page: each budget's use, what is left, and how long a 1-GPU (1-core) session started now
    could run with the team's running servers. Shared by the callers that get it for the same figures: read only."""
    sums = s.ledger.still(team.key, team.budgets, now)
    if sums is None:
        return _overview(s, team, now)
    key = (team.key, sums)
    hit = _still.get(key)
    if hit is None or hit[0] is not team.budgets:  # the entry holds the budgets it is for (values read anew: others)
        if len(_still) >= MAX_STILL:
            _still.clear()
        hit = _still[key] = (team.budgets, _overview(s, team, now))
    return hit[1]


def _overview(s, team, now: float) -> list[dict]:
    out = []
    for budget in team.budgets:
        st = standing(s, team.key, budget, now)
        out.append({"unit": budget.unit, "used": round(st.used, 1), "amount": budget.amount, "left": round(st.left, 1),
                    "days": budget.window_days, "minutes_for_one": int(st.left * 60 / (st.rate + 1))})
    return out


def warm(s, catalog, now: float) -> None:
    """Every budget's window sum, at hub start before it serves (the only synchronous sums; later ones are
    refreshed in a worker thread)."""
    for team in catalog.teams.values():
        for budget in team.budgets:
            standing(s, team.key, budget, now)
