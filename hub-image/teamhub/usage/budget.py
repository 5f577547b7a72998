"""Team budgets (`quota.gpuHours`, `quota.cpuHours`): rolling windows over the usage records.

At start (`check`, run in `TeamhubMixin.teamhub_apply` with no await between it and opening the start's
record, so simultaneous starts each see the others): refused when the team's budget is used up; otherwise
the session's deadline is capped at the moment the budget would run out with every running server of the
team (and this one) consuming at its rate. While running (`over`, from every poll): a team whose budget ran
out has its servers stopped, end reason `budget`, within one poll interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.access import RequestRefused
from . import totals
from .store import TABLE

DAY = 86400


@dataclass(frozen=True)
class Standing:
    budget: object  # catalog.Budget
    used: float  # hours in the window, running servers counted up to now
    rate: float  # GPUs (or CPU cores) the team's open records hold now, excluding `exclude`

    @property
    def left(self) -> float:
        return max(self.budget.amount - self.used, 0.0)


def _amount(budget) -> str:
    return "gpus" if budget.kind == "gpu" else "COALESCE(cpu, 0)"


def standing(s, con, team: str, budget, now: float, exclude: str | None = None) -> Standing:
    """`s`: the hub's Store. Closed records come from its cache (one query a minute per team and budget);
    the team's open records, few and found by index, are read every time."""
    from sqlalchemy import text

    start = now - budget.window_days * DAY

    def closed() -> float:
        rows = totals.query(con, totals.Period(start, now, now), (), "AND team = :team AND ended IS NOT NULL", {"team": team})
        return (rows[0]["gpu_hours"] if budget.kind == "gpu" else rows[0]["cpu_core_hours"]) if rows else 0.0

    used = s.cached((team, budget.kind, budget.window_days), now, closed)
    rate = 0.0
    for started, amount, server in con.execute(text(
            f"SELECT started, {_amount(budget)}, server FROM {TABLE} WHERE ended IS NULL AND team = :team"), {"team": team}):
        used += max(now - max(started, start), 0) * float(amount or 0) / 3600
        rate += float(amount or 0) if server != exclude else 0.0
    return Standing(budget, float(used), rate)


def _need(budget, gpus: int, cpu: float | None) -> float:
    return float(gpus) if budget.kind == "gpu" else float(cpu or 0)


def returns_at(con, team: str, budget, now: float) -> float | None:
    """When usage starts leaving the window again (the earliest moment any budget comes back)."""
    from sqlalchemy import text

    start = now - budget.window_days * DAY
    oldest = con.execute(text(f"SELECT MIN(started) FROM {TABLE} WHERE team = :team AND COALESCE(ended, :now) > :start "
                              "AND (end_reason IS NULL OR end_reason != 'failed-start')"),
                         {"team": team, "now": now, "start": start}).scalar()
    return None if oldest is None else max(float(oldest), start) + budget.window_days * DAY


def check(s, team, gpus: int, cpu: float | None, server: str, now: float) -> float | None:
    """Refuse (RequestRefused 403) when a budget of `team` (a catalog.Team) this start draws on is used up; else
    the capped deadline (epoch seconds) or None when no budget limits it. `s`: the hub's Store."""
    from ..hub.sessions import iso

    cap = None
    with s.engine.connect() as con:
        for budget in team.budgets:
            need = _need(budget, gpus, cpu)
            if need <= 0:
                continue
            st = standing(s, con, team.key, budget, now, exclude=server)
            if st.left <= 0:
                when = returns_at(con, team.key, budget, now)
                back = f"Budget returns from {iso(when)} as older usage leaves the window" if when else "Ask an admin for more"
                raise RequestRefused(403, f"The team '{team.display_name}' has used {st.used:.1f} of its {budget.amount:g} "
                                          f"{budget.unit} in the last {budget.window_days} days. {back}. "
                                          "Choose an environment that does not draw on this budget, or try again later.")
            end = now + st.left * 3600 / (st.rate + need)
            cap = end if cap is None else min(cap, end)
    return cap


def over(s, team, now: float):
    """The first budget of `team` that is used up while its servers consume it; None when all have hours left."""
    with s.engine.connect() as con:
        for budget in team.budgets:
            st = standing(s, con, team.key, budget, now)
            if st.rate > 0 and st.left <= 0:
                return st
    return None


def overview(s, team, now: float) -> list[dict]:
    """For the launch page: each budget's use, what is left, and how long a 1-GPU (1-core) session started now
    could run with the team's running servers."""
    out = []
    with s.engine.connect() as con:
        for budget in team.budgets:
            st = standing(s, con, team.key, budget, now)
            out.append({"unit": budget.unit, "used": round(st.used, 1), "amount": budget.amount, "left": round(st.left, 1),
                        "days": budget.window_days, "minutes_for_one": int(st.left * 60 / (st.rate + 1))})
    return out
