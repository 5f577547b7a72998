"""The spawner's hooks that write usage records (`teamhub.hub.teamhubmixin.TeamhubMixin` calls these).

The record's id lives in the spawner's persisted state (`teamhub_info["usage"]`), so a hub restarted after a
crash finds the open record of a server that still runs, and its first poll closes the record of one that
vanished while the hub was down, at the time it was last seen alive.
"""

from __future__ import annotations

import functools
import logging

from .. import clock
from ..catalog.access import RequestRefused
from ..values.quantities import cpu_cores, memory_bytes
from . import budget

KEY = "usage"
log = logging.getLogger("JupyterHub")


def _tolerant(default):
    """A database hiccup while recording must not fail a poll (JupyterHub would stop the server) or a stop:
    one WARNING line, and the hook's neutral answer."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                from sqlalchemy.exc import SQLAlchemyError  # imported only then: the launch page calls this 20 times a view

                if not isinstance(exc, SQLAlchemyError):
                    raise
                log.warning("usage records: %s failed: %s", fn.__name__, str(exc).splitlines()[0])
                return default
        return inner
    return wrap


@_tolerant(None)
def opened(spawner, launch, now: float | None = None) -> None:
    """A checked start begins: open its record, started at `now` (the budget check's instant) or the clock's now."""
    s = spawner.teamhub.usage
    if s is None or spawner.teamhub_info is None:
        return
    res = launch.resource
    cpu = cpu_cores(res.cpu_request)
    mem = memory_bytes(res.memory_request)
    spawner.teamhub_info[KEY] = s.open(
        clock.now() if now is None else now, server=spawner.teamhub_key, person=spawner.user.name, team=launch.team, resource=res.key,
        accelerator=launch.accelerator.key if launch.accelerator else None, gpus=launch.gpu_count,
        gpu_kind=launch.gpu.resource if launch.gpu else None, cpu=float(cpu) if cpu is not None else None,
        memory=int(mem) if mem is not None else None)


def record_of(spawner) -> int | None:
    return (spawner.teamhub_info or {}).get(KEY)


def _target(spawner, record: int | None):
    """The store and the record a hook writes to; `record` when the caller took it before the state was cleared."""
    return spawner.teamhub.usage, record if record is not None else record_of(spawner)


@_tolerant(None)
def seen(spawner, record: int | None = None) -> None:
    s, record = _target(spawner, record)
    if s is not None and record is not None:
        s.seen(record, clock.now())


@_tolerant(None)
def lost(spawner, record: int | None = None) -> None:
    """A poll found the server gone: end its record at the last time it was seen alive."""
    s, record = _target(spawner, record)
    if s is not None and record is not None and s.close(record, clock.now(), "lost", at_last_seen=True):
        spawner.log.warning("%s was found gone; its usage record ends when it was last seen alive", spawner.teamhub_key)


@_tolerant(None)
def closed(spawner, reason: str, record: int | None = None) -> None:
    s, record = _target(spawner, record)
    if s is not None and record is not None:
        s.close(record, clock.now(), reason)


def _team(catalog, name: str | None):
    team = catalog.teams.get(name) if name else None
    return team if team is not None and team.budgets else None


# The sentence for a start whose budget cannot be read (a locked or unreachable database): a 503, never
# JupyterHub's "400 Invalid user options" or a 500.
UNREADABLE = ("The hub cannot read the team's budget right now (its database is busy or unreachable), so it cannot "
              "start a server that draws on it. Try again in a minute.")


def budget_cap(spawner, launch, now: float | None = None) -> float | None:
    """The deadline a team budget allows this start checked at `now` (default: the clock's now; None: no limit);
    RequestRefused when it is used up (budget.Exhausted: `explain` it) or cannot be read (503)."""
    from sqlalchemy.exc import SQLAlchemyError

    s, team = spawner.teamhub.usage, _team(spawner.teamhub.catalog, launch.team)
    if s is None or team is None:
        return None
    cpu = cpu_cores(launch.resource.cpu_request)
    try:
        return budget.check(s, team, launch.gpu_count, float(cpu) if cpu is not None else None,
                            spawner.teamhub_key, clock.now() if now is None else now)
    except SQLAlchemyError as exc:
        log.warning("usage records: the budget check of %s failed: %s", spawner.teamhub_key, str(exc).splitlines()[0])
        raise RequestRefused(503, UNREADABLE) from None


async def explain(spawner, exc: RequestRefused) -> RequestRefused:
    """A budget refusal with when the budget returns (read off the event loop); other refusals as they are."""
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, budget.Exhausted):
        return exc
    try:
        return await budget.explain(spawner.teamhub.usage, exc)
    except SQLAlchemyError as err:
        log.warning("usage records: when the budget of %s returns is unknown: %s", exc.team.key, str(err).splitlines()[0])
        return RequestRefused(403, f"{exc.message} Try again later.")


@_tolerant(None)
def over_budget(spawner) -> str | None:
    """When the team this server is charged to has run out of a budget it draws on (checked at every poll, and
    while the server starts), the sentence the person reads; None while every budget has hours left."""
    s, team = spawner.teamhub.usage, _team(spawner.teamhub.catalog, (spawner.teamhub_info or {}).get("team"))
    if s is None or team is None:
        return None
    st = budget.over(s, team, clock.now())
    if st is None:
        return None
    spawner.log.info("The team %s used %s of its %g %s: stopping %s", team.key, budget.hours(st.used), st.budget.amount,
                     st.budget.unit, spawner.teamhub_key)
    return (f"The team '{team.display_name}' has used its {st.budget.amount:g} {st.budget.unit} of the last "
            f"{st.budget.window_days} days, so this server was stopped.")


@_tolerant(None)
def budget_stamp(rt, now: float) -> tuple | None:
    """`Ledger.stamp` of the hub's store (None without one): what lets the launch page keep a still team's budget cell."""
    return rt.usage.ledger.stamp(now) if rt.usage is not None else None


@_tolerant([])
def budget_overview(rt, team_key: str, now: float | None = None) -> list[dict]:
    """The launch page's budget lines for a team (empty without a store or budgets); `now`: the page's clock reading."""
    s, team = rt.usage, _team(rt.catalog, team_key)
    return budget.overview(s, team, clock.now() if now is None else now) if s is not None and team is not None else []
