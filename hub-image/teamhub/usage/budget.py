"""Team budgets (`quota.gpuHours`, `quota.cpuHours`): rolling windows over the usage records.

At start (`check`, run in `TeamhubMixin.teamhub_apply` with no await between it and opening the start's
record, so simultaneous starts each see the others): refused when the team's budget is used up; otherwise
the session's deadline is capped at the moment the budget would run out with every running server of the
team (and this one) consuming at its rate. While running (`over`, from every poll): a team whose budget ran
out has its servers stopped, end reason `budget`, within one poll interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..resolution import RequestRefused
from . import totals
from .store import TABLE

DAY = 86400


@dataclass(frozen=True)
class Standing:
    budget: object  # catalog.Budget
    used: float  # hours in the window, running servers counted up to now
    rate: float  # GPUs (or CPU cores) the team's open records hold now, excluding `exclude`
    oldest: float | None  # start of the oldest usage still in the window

    @property
    def left(self) -> float:
        return max(self.budget.amount - self.used, 0.0)


def standing(con, team: str, budget, now: float, exclude: str | None = None) -> Standing:
    from sqlalchemy import text

    start = now - budget.window_days * DAY
    rows = totals.query(con, totals.Period(start, now, now), (), "AND team = :team", {"team": team})
    used = (rows[0]["gpu_hours"] if budget.kind == "gpu" else rows[0]["cpu_core_hours"]) if rows else 0.0
    amount = "gpus" if budget.kind == "gpu" else "COALESCE(cpu, 0)"
    rate, oldest = con.execute(text(
        f"SELECT SUM(CASE WHEN ended IS NULL AND server != :me THEN {amount} ELSE 0 END), MIN(started) FROM {TABLE} "
        "WHERE team = :team AND COALESCE(ended, :now) > :start AND (end_reason IS NULL OR end_reason != 'failed-start')"),
        {"team": team, "me": exclude or "", "now": now, "start": start}).one()
    return Standing(budget, float(used), float(rate or 0), None if oldest is None else max(float(oldest), start))


def _need(budget, gpus: int, cpu: float | None) -> float:
    return float(gpus) if budget.kind == "gpu" else float(cpu or 0)


def returns_at(st: Standing) -> float | None:
    """When usage starts leaving the window again (the earliest moment any budget comes back)."""
    return None if st.oldest is None else st.oldest + st.budget.window_days * DAY


def check(engine, team, gpus: int, cpu: float | None, server: str, now: float) -> float | None:
    """Refuse (RequestRefused 403) when a budget of `team` (a catalog.Team) this start draws on is used up; else
    the capped deadline (epoch seconds) or None when no budget limits it."""
    from ..hub.sessions import iso

    cap = None
    with engine.connect() as con:
        for budget in team.budgets:
            need = _need(budget, gpus, cpu)
            if need <= 0:
                continue
            st = standing(con, team.key, budget, now, exclude=server)
            if st.left <= 0:
                when = returns_at(st)
                back = f"Budget returns from {iso(when)} as older usage leaves the window" if when else "Ask an admin for more"
                raise RequestRefused(403, f"The team '{team.display_name}' has used {st.used:.1f} of its {budget.amount:g} "
                                          f"{budget.unit} in the last {budget.window_days} days. {back}. "
                                          "Choose an environment that does not draw on this budget, or try again later.")
            end = now + st.left * 3600 / (st.rate + need)
            cap = end if cap is None else min(cap, end)
    return cap


def over(engine, team, now: float):
    """The first budget of `team` that is used up while its servers consume it; None when all have hours left."""
    with engine.connect() as con:
        for budget in team.budgets:
            st = standing(con, team.key, budget, now)
            if st.rate > 0 and st.left <= 0:
                return st
    return None


def overview(engine, team, now: float) -> list[dict]:
    """For the launch page: each budget's use, what is left, and how long a 1-GPU (1-core) session started now
    could run with the team's running servers."""
    out = []
    with engine.connect() as con:
        for budget in team.budgets:
            st = standing(con, team.key, budget, now)
            out.append({"unit": budget.unit, "used": round(st.used, 1), "amount": budget.amount, "left": round(st.left, 1),
                        "days": budget.window_days, "minutes_for_one": int(st.left * 60 / (st.rate + 1))})
    return out
