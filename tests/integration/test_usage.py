"""Usage records (issue 14) with a real hub on its real SQLite database: what a start, a stop by the person,
a deadline, a `kill -9` of the hub and a server that vanished while the hub was down leave in the table
`teamhub_usage`, and what `teamhub usage` makes of them. The test clock (TEAMHUB_TEST_CLOCK_FILE) makes an
hour pass without waiting for it.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from hubprocess import clock_hub
from support import tree_env, wait_for
from teamhub.usage.metrics import EXPORTED

PASSWORD = "usage-test-pass"
HOUR = 3600
DEFAULT_CHECK_SECONDS = 5  # sessions.budgetCheckSeconds in config/values.yaml


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = clock_hub(tmp_path_factory.mktemp("usage-hub"), PASSWORD)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def apis(hub):
    return {name: hub.api(hub.token(hub.login(name, PASSWORD), f"local:{name}")) for name in ("ada", "alice", "bob")}


def records(hub) -> list[dict]:
    con = sqlite3.connect(hub.state / "jupyterhub.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM teamhub_usage ORDER BY id")]
    finally:
        con.close()


def latest(hub, person: str) -> dict:
    return [r for r in records(hub) if r["person"] == f"local:{person}"][-1]


def advance(hub, seconds: float) -> float:
    """Move the hub's clock forward; returns the new offset."""
    offset = float(hub.clock_file.read_text()) if hub.clock_file.exists() else 0.0
    hub.clock_file.write_text(str(offset + seconds))
    return offset + seconds


def start(hub, api, name: str, **options) -> None:
    r = api.post(f"/users/local:{name}/server", json=options)
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(api, f"local:{name}")


def stopped(admin, name: str) -> bool:
    return admin.get(f"/users/local:{name}").json()["servers"] == {}


def usage_cli(hub, *args) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "teamhub", "usage", "--db", str(hub.state / "jupyterhub.sqlite"), "--format", "json",
                        "--from", "2000-01-01", "--to", "2100-01-01", *args], capture_output=True, text=True, env=tree_env(TEAMHUB_TEST_CLOCK_FILE=str(hub.clock_file)), timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_an_hour_on_a_gpu_stopped_by_the_person(hub, apis):
    start(hub, apis["alice"], "alice", resource="course-cv", accelerator="mi300x", sessionMinutes=180)
    rec = latest(hub, "alice")
    assert rec["ended"] is None and rec["last_seen"] is not None
    assert (rec["team"], rec["resource"], rec["accelerator"], rec["gpus"], rec["gpu_kind"]) == ("cv-course", "course-cv", "mi300x", 1, "amd.com/gpu")
    assert (rec["cpu"], rec["memory"]) == (4.0, 16 * 2**30)

    advance(hub, HOUR)
    wait_for(lambda: latest(hub, "alice")["last_seen"] > rec["started"] + HOUR, "a poll to see alice's server an hour later")
    assert apis["alice"].delete("/users/local:alice/server").status_code in (202, 204)
    wait_for(lambda: stopped(apis["ada"], "alice"), "alice's server to stop")
    rec = latest(hub, "alice")
    assert rec["end_reason"] == "stopped"
    assert HOUR <= rec["ended"] - rec["started"] < HOUR + 120

    totals = usage_cli(hub, "--by", "team,person")
    alice = next(t for t in totals if t["person"] == "local:alice")
    assert alice["team"] == "cv-course" and alice["sessions"] == 1 and alice["failed_starts"] == 0
    assert 1.0 <= alice["gpu_hours"] == alice["server_hours"] < 1.04
    assert alice["cpu_core_hours"] == pytest.approx(4 * alice["server_hours"], rel=1e-3)


def test_a_deadline_ends_the_record_as_deadline(hub, apis):
    start(hub, apis["bob"], "bob", resource="cpu-small", sessionMinutes=30)
    rec = latest(hub, "bob")
    advance(hub, 31 * 60)
    wait_for(lambda: stopped(apis["ada"], "bob"), "bob's server to reach its deadline")
    rec = latest(hub, "bob")
    assert rec["end_reason"] == "deadline" and rec["gpus"] == 0 and rec["team"] in ("everyone", "nlp-course")
    assert 30 * 60 <= rec["ended"] - rec["started"] < 33 * 60


def test_records_survive_a_hub_kill_and_a_server_vanishing_while_it_is_down(hub, apis):
    admin = apis["ada"]
    start(hub, apis["alice"], "alice", resource="cpu-small", sessionMinutes=240)  # keeps running
    start(hub, apis["bob"], "bob", resource="cpu-small", sessionMinutes=240)  # vanishes while the hub is down
    bob_pid = admin.get("/users/local:bob").json()["servers"][""]["state"]["pid"]
    alice_id, bob_id = latest(hub, "alice")["id"], latest(hub, "bob")["id"]

    hub.crash()
    bob_seen = latest(hub, "bob")["last_seen"]
    psutil.Process(bob_pid).send_signal(signal.SIGKILL)
    advance(hub, 2 * HOUR)  # two hours pass while the hub is down
    hub.start()

    wait_for(lambda: stopped(admin, "bob"), "the restarted hub to notice bob's server is gone")
    by_id = {r["id"]: r for r in records(hub)}
    bob = by_id[bob_id]
    assert bob["end_reason"] == "lost"
    assert bob["ended"] == bob_seen  # closed at the last time it was seen alive, not at the restart
    alice = wait_for(lambda: (r := {x["id"]: x for x in records(hub)}[alice_id])["last_seen"] > bob_seen + 2 * HOUR and r,
                     "the restarted hub to see alice's server")
    assert alice["ended"] is None and alice["end_reason"] is None  # still running: its record stays open
    assert not stopped(admin, "alice")

    totals = {t["person"]: t for t in usage_cli(hub, "--by", "person")}
    assert totals["local:bob"]["server_hours"] < 0.6  # bob's earlier 31 minutes + seconds; none of the 2 hours down
    assert totals["local:alice"]["server_hours"] > 2.0  # the 2 hours it ran while the hub was down count
    assert apis["alice"].delete("/users/local:alice/server").status_code in (202, 204)
    wait_for(lambda: stopped(admin, "alice"), "alice's server to stop")


# --- budgets (quota.gpuHours) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def budget_hub(tmp_path_factory):
    """cv-course may use 2 GPU-hours in 30 days; alice and dave are in it."""
    def edit(values):
        values["catalog"]["teams"]["cv-course"]["quota"] = {"gpuHours": {"amount": 2, "window": "30d"}}

    h = clock_hub(tmp_path_factory.mktemp("budget-hub"), PASSWORD, {"dave": ["cv-course"]}, edit)
    yield h
    h.stop()


def server_state(admin, name: str) -> dict:
    return admin.get(f"/users/local:{name}").json()["servers"][""]["state"]["teamhub"]


def test_a_team_budget_caps_deadlines_stops_sessions_and_refuses_starts(budget_hub):
    hub = budget_hub
    clients = {name: hub.login(name, PASSWORD) for name in ("ada", "alice", "dave")}
    apis = {name: hub.api(hub.token(c, f"local:{name}")) for name, c in clients.items()}
    admin = apis["ada"]
    page = clients["alice"].get("/hub/spawn").text
    assert "2.0 of 2.0 GPU-hours left (last 30 days)" in page and "ends after at most 2 h" in page

    gpu = {"resource": "course-cv", "accelerator": "mi300x", "sessionMinutes": 240}
    start(hub, apis["alice"], "alice", **gpu)
    alice = server_state(admin, "alice")
    alice_rec = latest(hub, "alice")
    assert alice["budget_capped"] and alice["deadline"] == pytest.approx(alice_rec["started"] + 2 * HOUR, abs=5)
    start(hub, apis["dave"], "dave", **gpu)  # two GPUs now draw on what is left: dave's session gets half
    dave = server_state(admin, "dave")
    assert dave["budget_capped"] and dave["deadline"] - latest(hub, "dave")["started"] < HOUR + 5

    advance(hub, HOUR + 30)  # dave's capped deadline passes, and with alice's hour the budget is used up
    wait_for(lambda: stopped(admin, "dave") and stopped(admin, "alice"), "both servers to be stopped by the budget", 60)
    assert latest(hub, "dave")["end_reason"] == "budget" and latest(hub, "alice")["end_reason"] == "budget"

    r = apis["alice"].post("/users/local:alice/server", json=gpu)
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    # what was used, not rounded away (issue 24), and when a minute of it is back: alice's record leaves first
    assert re.search(r"The team 'Computer Vision 2026' has used 2(\.0\d)? of its 2 GPU-hours in the last 30 days\.", message), message
    returns = time.strftime("%Y-%m-%d", time.gmtime(alice_rec["started"] + 30 * 86400))
    assert f"Budget returns at {returns}T" in message
    assert stopped(admin, "alice")  # nothing was created: no server, no new record
    assert len([r for r in records(hub) if r["person"] == "local:alice"]) == 1
    start(hub, apis["alice"], "alice", resource="cpu-small", sessionMinutes=60)  # no GPU: not this budget
    assert not server_state(admin, "alice")["budget_capped"]
    assert apis["alice"].delete("/users/local:alice/server").status_code in (202, 204)
    wait_for(lambda: stopped(admin, "alice"), "alice's server to stop")


def scrape(hub, api) -> dict:
    """/hub/metrics parsed by prometheus_client's own text-format parser: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{hub.url}/hub/metrics", headers=api.headers, timeout=30)
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def test_metrics_from_the_records_and_start_outcomes(budget_hub):
    hub = budget_hub
    apis = {name: hub.api(hub.token(hub.login(name, PASSWORD), f"local:{name}")) for name in ("ada", "bob")}
    assert httpx.get(f"{hub.url}/hub/metrics", headers=apis["bob"].headers, timeout=30).status_code == 403  # needs read:metrics
    r = apis["bob"].post("/users/local:bob/server", json={"resource": "course-cv", "accelerator": "mi300x"})
    assert r.status_code == 403  # bob is not in the CV course
    start(hub, apis["bob"], "bob", resource="cpu-small", sessionMinutes=60)
    samples = scrape(hub, apis["ada"])
    assert set(EXPORTED) <= {name for name, _ in samples}  # what the Grafana dashboard may query is really there
    assert metric(samples, "teamhub_servers_running", resource="cpu-small") == 1
    assert metric(samples, "teamhub_gpus_in_use") == 0
    # the budget test before: alice 1 h 30 s and dave 1 h on one GPU each (to within a few polls)
    gpu_seconds = metric(samples, "teamhub_gpu_seconds_total", team="cv-course", resource="course-cv")
    assert 2 * HOUR <= gpu_seconds < 2 * HOUR + 300
    assert metric(samples, "teamhub_server_seconds_total", resource="course-cv") == gpu_seconds
    # start outcomes: JupyterHub's spawn metric, with the SpawnException's reason for a refusal
    spawns = "jupyterhub_server_spawn_duration_seconds_count"
    assert metric(samples, spawns, status="failure", reason="refused-not-allowed") == 1
    assert metric(samples, spawns, status="failure", reason="refused-budget") == 1
    assert metric(samples, spawns, status="success") == 4
    assert metric(samples, spawns, status="error") == 0  # a refusal is not a hub fault
    assert metric(samples, "teamhub_start_duration_seconds_count", resource="course-cv") == 2
    assert metric(samples, "teamhub_start_duration_seconds_bucket", resource="cpu-small", le="+Inf") == 2
    assert apis["bob"].delete("/users/local:bob/server").status_code in (202, 204)
    wait_for(lambda: stopped(apis["ada"], "bob"), "bob's server to stop")
    assert metric(scrape(hub, apis["ada"]), "teamhub_servers_running") == 0


# --- 50 simultaneous starts against a team budget (issue 14's acceptance) ---------------------------------
RUSH = 50
# GPU-seconds: a start the budget cannot give MIN_SECONDS (a minute) with the team's servers (booting ones too)
# and itself drawing on it is refused (issue 24), so however the burst interleaves on this machine at most
# RUSH_BUDGET_SECONDS // MIN_SECONDS = 2 of the 50 are accepted and the first always is; the accepted run out of it
# on the real clock and are stopped at the hub's real check interval (sessions.budgetCheckSeconds, 5 s).
RUSH_BUDGET_SECONDS = 150
RUSH_SENTENCE = re.compile(r"The team 'Computer Vision 2026' has used [0-9.e-]+ of its 0\.0416667 GPU-hours in the last 30 days\. "
                           r"Budget returns at \d{4}-\d\d-\d\dT")


@pytest.fixture(scope="module")
def rush_hub(tmp_path_factory):
    """cv-course: 50 members, no server or GPU limit (only the budget refuses), a budget of 150 GPU-seconds;
    no test clock (the hub checks budgets every sessions.budgetCheckSeconds, as in production)."""
    def edit(values):
        values["catalog"]["teams"]["cv-course"]["quota"] = {"gpuHours": {"amount": RUSH_BUDGET_SECONDS / HOUR, "window": "30d"}}

    h = clock_hub(tmp_path_factory.mktemp("rush-hub"), PASSWORD, {f"p{i:02d}": ["cv-course"] for i in range(RUSH)}, edit,
                  clock=False)
    yield h
    h.stop()


def used_at(recs: list[dict], t: float) -> float:
    """GPU-seconds the records had used by the moment t."""
    return sum(r["gpus"] * max(0.0, min(r["ended"], t) - r["started"]) for r in recs)


def run_out(recs: list[dict], amount: float) -> float:
    """The moment the records' use reached `amount` GPU-seconds (use only grows: bisection)."""
    lo, hi = min(r["started"] for r in recs), max(r["ended"] for r in recs)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if used_at(recs, mid) < amount else (lo, mid)
    return hi


def left_at_check(recs: list[dict], rec: dict) -> tuple[float, int]:
    """What the budget check of `rec`'s start saw, from the records alone (a record starts at its check's instant):
    (GPU-seconds left, GPUs the team's other servers, booting or running, drew then)."""
    t = rec["started"]
    others = [r for r in recs if r is not rec and r["started"] < t]
    return RUSH_BUDGET_SECONDS - used_at(others, t), sum(r["gpus"] for r in others if r["ended"] > t)


def outcome(api: httpx.Client, name: str, answer: tuple[int, str]) -> tuple[str, str]:
    """How a start ended for the person: ("refused", sentence) or ("accepted", ""). JupyterHub answers 202 when the
    start is still pending after its slow-spawn timeout (on a loaded machine even the budget check may come after
    it): its progress stream then says how it ended."""
    code, text = answer
    if code == 403:
        return "refused", json.loads(text)["message"]
    assert code in (201, 202), answer
    with api.stream("GET", f"/users/{name}/server/progress", timeout=300) as r:
        if r.status_code == 400:  # not starting any more and not failed: it came up (the budget stopped it later)
            return "accepted", ""
        events = [json.loads(line[len("data:"):]) for line in r.iter_lines() if line.startswith("data:")]
    last = events[-1]
    return ("refused", last["message"]) if last.get("failed") else ("accepted", "")


def test_fifty_simultaneous_starts_never_overrun_the_budget(rush_hub):
    """The budget runs out in real seconds while the accepted servers run (or still boot). Asserted: what holds on
    any machine (each accepted start's check saw a minute left for every GPU drawing on it, recomputed from the
    records; how many that lets through; how each start ended); the overrun is printed (README states it)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from teamhub.usage.budget import MIN_SECONDS

    hub = rush_hub
    admin = hub.api(hub.token(hub.login("ada", PASSWORD), "local:ada"))
    names = [f"local:p{i:02d}" for i in range(RUSH)]
    assert admin.post("/users", json={"usernames": names}).status_code in (201, 409)
    # Each person starts with their own token, as a script or the launch page would.
    people = {}
    for name in names:
        r = admin.post(f"/users/{name}/tokens", json={"note": "rush"})
        assert r.status_code == 201, r.text
        people[name] = hub.api(r.json()["token"])
        assert people[name].get("/user").status_code == 200  # connected before the burst
    gpu = {"resource": "course-cv", "accelerator": "mi300x", "sessionMinutes": 240}
    barrier = Barrier(RUSH)

    def rush(name):
        barrier.wait()
        r = people[name].post(f"/users/{name}/server", json=gpu, timeout=120)
        return r.status_code, r.text

    with ThreadPoolExecutor(RUSH) as pool:
        answers = dict(zip(names, pool.map(rush, names), strict=True))
    codes = sorted(code for code, _ in answers.values())
    print("answers:", {c: codes.count(c) for c in set(codes)})
    assert not [code for code in codes if code >= 500], answers
    with ThreadPoolExecutor(RUSH) as pool:
        ends = dict(zip(names, pool.map(lambda n: outcome(people[n], n, answers[n]), names), strict=True))

    # (1) every server of the team ends, by the budget, without anyone asking
    recs = wait_for(lambda: (rs := [r for r in records(hub) if r["team"] == "cv-course"]) and all(r["ended"] for r in rs) and rs,
                    "every accepted server to be stopped by the budget", 300)
    wait_for(lambda: all(stopped(admin, n.removeprefix("local:")) for n in names), "JupyterHub to list no server of the team", 150)
    assert {r["end_reason"] for r in recs} == {"budget"}, recs  # all charged: none ended as a failed start
    accepted = {r["person"] for r in recs}  # a start the budget check let through opened a record
    assert len(recs) == len(accepted)
    # (2) no start was accepted after the budget was spent: each accepted check saw a minute left for every GPU
    # drawing on it (the others' booting or running servers and its own). So the first start is always accepted
    # and at most RUSH_BUDGET_SECONDS // MIN_SECONDS are, however fast this machine answers.
    for rec in recs:
        left, drawing = left_at_check(recs, rec)
        assert left >= MIN_SECONDS * (drawing + rec["gpus"]) - 1e-6, (rec, left, drawing)
    assert 1 <= len(accepted) <= RUSH_BUDGET_SECONDS // MIN_SECONDS
    # (3) the refused got the budget sentence (at once with a 403, or through the progress of a start JupyterHub
    # had answered 202 while it waited) and nothing was created for them; an accepted start the budget ended while
    # its server was still booting fails with the budget too
    for name in names:
        how, message = ends[name]
        if name in accepted:
            assert how == "accepted" or re.search(r"team budget|has used its .* so this server was stopped", message), \
                (name, answers[name], ends[name])
        else:
            assert how == "refused" and RUSH_SENTENCE.search(message), (name, answers[name], ends[name])
    # no start was a hub fault (a 500): JupyterHub's spawn metric counts only budget refusals and successes
    samples = scrape(hub, admin)
    spawns = "jupyterhub_server_spawn_duration_seconds_count"
    assert metric(samples, spawns, status="error") == 0
    failures = {dict(ls).get("reason") for (n, ls), v in samples.items() if n == spawns and dict(ls).get("status") == "failure" and v}
    assert failures == {"refused-budget"}, failures

    # figures: what the team used beyond its budget, and how long after it ran out its servers were stopped
    t_out = run_out(recs, RUSH_BUDGET_SECONDS)
    overrun = used_at(recs, max(r["ended"] for r in recs)) - RUSH_BUDGET_SECONDS
    delays = sorted(r["ended"] - t_out for r in recs)
    print(f"accepted {len(recs)}: overrun {overrun:.1f} GPU-s ({overrun / len(recs):.1f} s a server; checks every "
          f"{DEFAULT_CHECK_SECONDS} s); stopped {delays[0]:.1f} to {delays[-1]:.1f} s after the budget ran out")
    assert not [p for p in psutil.Process(hub.proc.pid).children(recursive=True) if "singleuser" in " ".join(p.cmdline())]
