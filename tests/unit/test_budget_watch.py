"""The budget watch and the budget check on the test clock, with a fake server that never finishes booting.

The hub's clock (teamhub.clock) is frozen here and moved only by the test clock's file: each check of the start
watch happens one check interval (sessions.budgetCheckSeconds) of hub time after the previous one, so what the
watch decides is a function of the clock alone, not of how fast this machine runs.
"""

from __future__ import annotations

import asyncio
import types

import pytest
from hubhelpers import FakeUser, configured, kube_spawner, runtime
from teamhub import clock
from teamhub.usage import budget, store
from tornado import web

CHECK = 5  # sessions.budgetCheckSeconds' default: hub seconds between two checks of a start
BUDGET = 180  # GPU-seconds of the team `lab`
T0 = 1_800_000_000.0  # the frozen epoch the test clock's offset is added to
VALUES = """
auth:
  local:
    enabled: true
    users:
{users}
catalog:
  images:
    img: {{name: example.org/img, tag: "1"}}
  resources:
    gpu:
      displayName: GPU box
      image: img
      cpu: {{request: 1}}
      memory: {{request: 1Gi}}
      gpu: {{resource: nvidia.com/gpu, count: 1}}
  teams:
    lab:
      resources: [gpu]
      quota: {{gpuHours: {{amount: {hours}}}}}
"""
HASH = "$2b$12$Xgnp62i4m6AkY2tuTo9bmuzSyf8FTrxbeRUIiQn9Lmoh/UsjXVrQe"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """(make a spawner, the test clock file, the usage store): a frozen hub clock, a team `lab` of ten with a
    BUDGET GPU-second budget, and a KubeSpawner whose pod never runs (a server booting for ever)."""
    from kubespawner import KubeSpawner

    clock_file = tmp_path / "clock"
    clock_file.write_text("0")
    monkeypatch.setenv(clock.TEST_CLOCK_ENV, str(clock_file))
    monkeypatch.setattr(clock, "time", types.SimpleNamespace(time=lambda: T0))  # only the file moves it
    path = tmp_path / "values.yaml"
    users = "\n".join(f"      u{i}: {{passwordHash: \"{HASH}\", teams: [lab]}}" for i in range(10))
    path.write_text(VALUES.format(users=users, hours=BUDGET / 3600))
    c = configured(path)
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    runtime(c).usage = s
    stops: list[str] = []

    async def booting(self):
        await asyncio.Event().wait()  # the pod stays pending: the start never returns by itself

    async def stop(self, now=False):
        stops.append(self.teamhub_key)

    monkeypatch.setattr(KubeSpawner, "start", booting)
    monkeypatch.setattr(KubeSpawner, "stop", stop)

    def spawner(name: str):
        sp = kube_spawner(c, f"local:{name}")
        sp.user = FakeUser(f"local:{name}")
        sp.poll_interval = 0  # no real wait between the watch's checks; hub time moves by CHECK at each
        return sp

    yield types.SimpleNamespace(spawner=spawner, clock_file=clock_file, store=s, stops=stops, config=c)
    s.dispose()


def at(h, seconds: float) -> None:
    h.clock_file.write_text(str(seconds))


def offset(h) -> float:
    return float(h.clock_file.read_text())


def ticking(h, sp) -> list[float]:
    """Make every check of `sp`'s start watch happen CHECK hub seconds after the previous one; returns the hub
    times of the checks."""
    checks: list[float] = []
    due = sp._teamhub_due

    def check(budget: bool = True):
        at(h, offset(h) + CHECK)
        checks.append(clock.now())
        return due(budget)

    sp._teamhub_due = check
    return checks


def refused_start(sp) -> web.HTTPError:
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(sp.teamhub_apply({"resource": "gpu"}))
    return info.value


def test_the_watch_stops_a_booting_server_within_one_check_of_the_budget_running_out(hub):
    """u0 and u1 start at the same moment on one GPU each: the check gives u1 half of what is left (u0, still
    booting, already draws on it), so the budget runs out BUDGET/2 seconds later. Neither server ever comes up;
    the watch of u0's start (capped later than that: its own check saw one GPU) stops it at the first check at or
    after the run-out, its record charged for the boot. A start checked after that is refused."""
    u0, u1 = hub.spawner("u0"), hub.spawner("u1")
    asyncio.run(u0.teamhub_apply({"resource": "gpu"}))
    asyncio.run(u1.teamhub_apply({"resource": "gpu"}))  # u1's own start is under way elsewhere: its record counts
    assert u0.teamhub_deadline == T0 + BUDGET  # alone: the whole budget
    assert u1.teamhub_deadline == T0 + BUDGET / 2  # with u0 booting: the rest shared by two GPUs
    run_out = T0 + BUDGET / 2
    checks = ticking(hub, u0)

    with pytest.raises(web.HTTPError) as info:
        asyncio.run(u0.start())
    # stopped because the team's budget ran out (u0's own capped deadline, T0 + BUDGET, is still ahead)
    assert info.value.status_code == 403 and info.value.reason == "refused-budget"
    assert info.value.jupyterhub_message == "The team 'lab' has used its 0.05 GPU-hours of the last 30 days, so this server was stopped."
    assert hub.stops == ["local:u0/"]  # stopped by the watch, at once
    rec = hub.store.get(u0.teamhub_info["usage"])
    assert rec["end_reason"] == "budget"
    assert checks[-1] == rec["ended"]  # the check that stopped it is where its record ends
    assert run_out <= rec["ended"] < run_out + CHECK  # within one check interval of the budget running out
    assert all(t < run_out for t in checks[:-1])  # no check before the run-out stopped it
    assert rec["ended"] - rec["started"] == BUDGET / 2  # its whole boot counts: it never came up
    used, rate = hub.store.ledger.use("lab", "gpu", 30, clock.now())
    assert used * 3600 >= BUDGET and rate == 1  # u1's record, still open, holds a GPU

    late = refused_start(hub.spawner("u2"))
    assert late.status_code == 403 and late.reason == "refused-budget"
    assert "The team 'lab' has used 0.05 of its 0.05 GPU-hours in the last 30 days." in late.jupyterhub_message
    assert [r for r in _records(hub) if r["server"].startswith("local:u2")] == []  # nothing opened for it


def test_a_start_the_budget_cannot_give_a_minute_is_refused_before_the_budget_is_spent(hub):
    """While the budget still has seconds left, a start that would get less than budget.MIN_SECONDS of it is
    refused: booting servers already draw on what is left."""
    asyncio.run(hub.spawner("u0").teamhub_apply({"resource": "gpu"}))
    at(hub, BUDGET - budget.MIN_SECONDS + 1)  # u0 has used all but 59 GPU-seconds while it boots
    late = refused_start(hub.spawner("u1"))
    assert late.status_code == 403 and late.reason == "refused-budget"
    assert "has used 0.0336 of its 0.05 GPU-hours" in late.jupyterhub_message


def test_simultaneous_starts_accept_exactly_what_the_budget_can_give_a_minute_each(hub):
    """Ten starts checked at the same moment: each accepted one reserves at least MIN_SECONDS of the budget for
    every GPU the team's servers (booting ones included) draw, so the number accepted is decided by the check:
    BUDGET // MIN_SECONDS, whatever the order or speed (the rush acceptance test's bound)."""
    accepted, refused = [], []
    for i in range(10):
        sp = hub.spawner(f"u{i}")
        try:
            asyncio.run(sp.teamhub_apply({"resource": "gpu"}))
            accepted.append(sp)
        except web.HTTPError as exc:
            assert exc.status_code == 403 and exc.reason == "refused-budget"
            refused.append(sp)
    assert len(accepted) == BUDGET // budget.MIN_SECONDS == 3
    # every accepted start can run a minute before the budget runs out, and no longer than the budget allows
    assert all(sp.teamhub_deadline - T0 >= budget.MIN_SECONDS for sp in accepted)
    assert min(sp.teamhub_deadline for sp in accepted) == T0 + BUDGET / len(accepted)
    assert len(_records(hub)) == 3 and runtime(hub.config).quota.usage("lab").servers == 3


def _records(hub) -> list[dict]:
    from sqlalchemy import text

    with hub.store.engine.connect() as con:
        return [dict(r._mapping) for r in con.execute(text("SELECT * FROM teamhub_usage ORDER BY id"))]
