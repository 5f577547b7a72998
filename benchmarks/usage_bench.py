"""Usage records at the scale of a term (a script that prints figures, not a test; issue 24).

For each size (default 10^4, 10^5, 10^6 records over 60 days, 2,000 people, the demo catalog's teams), a real
hub (teamhub's jupyterhub_config.py, local mode, its SQLite database filled before it starts) is measured
while a thread polls GET /hub/health every 20 ms:
- `GET /hub/metrics` (the ServiceMonitor's scrape), median of 10;
- the admins' `GET /hub/usage` by team, median of 5, and by person,resource,accelerator,team, median of 3;
- the longest /hub/health answer while each of those ran;
- the floor: GET /hub/api/user with the same token (what any authenticated request costs on this machine now).
Targets: scrape < 50 ms at 10^6; no /hub/health answer over 100 ms at any size.
The baseline, measured in the same run on the same database: the SQL the hub ran on its event loop before
the ledger (the collector's two queries per scrape, the page's totals query) timed in this process. Then the
budget check of a start (`budget.check`) with its window sums in memory.

    .venv/bin/python benchmarks/usage_bench.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hub-image"))
sys.path.insert(0, str(ROOT / "tests"))

from hubprocess import HubProcess, demo_values  # noqa: E402
from teamhub.catalog.model import Budget, Team  # noqa: E402
from teamhub.usage import budget, daily, store, totals  # noqa: E402

DAY = 86400
PASSWORD = "usage-bench-pass"
PEOPLE = 2000
TEAMS = ["cv-course", "nlp-course", "everyone", "staff"]
RESOURCES = [("cpu-small", 0, None), ("cpu-large", 0, None), ("course-cv", 1, "mi300x"), ("course-nlp", 1, "mi300x"),
             ("research-gpu", 2, "mi300x")]
HEALTH_EVERY = 0.02


def fill(db: Path, n: int, now: float) -> None:
    """n closed records over the 60 days before now, and a few still open (seen a minute ago)."""
    rnd = random.Random(24)
    cols = store.COLUMNS + ("ended", "last_seen", "end_reason")
    sql = f"INSERT INTO {store.TABLE} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    con = sqlite3.connect(db)
    batch = []
    for i in range(n):
        person = f"local:p{rnd.randrange(PEOPLE)}"
        res, gpus, acc = rnd.choice(RESOURCES)
        started = now - rnd.uniform(0, 60 * DAY)
        open_ = i >= n - 20
        ended = None if open_ else started + rnd.uniform(60, 4 * 3600)
        reason = None if open_ else rnd.choice(("stopped", "stopped", "deadline", "idle-cull", "failed-start"))
        batch.append((f"{person}/", person, rnd.choice(TEAMS), res, acc, gpus, "amd.com/gpu" if gpus else None,
                      rnd.choice((2.0, 4.0, 8.0)), 2**34, started, ended, now - 60 if open_ else None, reason))
        if len(batch) == 50_000:
            con.executemany(sql, batch)
            batch.clear()
    con.executemany(sql, batch)
    con.commit()
    con.close()


def values(state: Path) -> Path:
    import yaml
    from teamhub.auth.passwords import hash_password

    v = demo_values()
    for user in v["auth"]["local"]["users"].values():
        user["passwordHash"] = hash_password(PASSWORD, 4)
    v["catalog"]["teams"]["cv-course"]["quota"] = {"gpuHours": {"amount": 10**6, "window": "30d"}}
    v["sessions"]["idleCullMinutes"] = 0
    (state / "values.yaml").write_text(yaml.safe_dump(v, sort_keys=False))
    return state / "values.yaml"


class HealthPoller:
    """GET /hub/health every 20 ms in a thread; `longest()` since the last `reset()`."""

    def __init__(self, url: str):
        self.url, self.times, self.stop = url, [], threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                t = time.perf_counter()
                client.get(f"{self.url}/hub/health")
                with self.lock:
                    self.times.append(time.perf_counter() - t)
                self.stop.wait(HEALTH_EVERY)

    def reset(self):
        with self.lock:
            self.times = []

    def longest(self) -> float:
        with self.lock:
            return max(self.times, default=0.0)


def timed(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def summarize(url: str) -> None:
    """The records were written around the store: the daily summaries from them, as migration 2 does."""
    engine = store.make_engine(url)
    with engine.begin() as con:
        daily.rebuild(con)
    engine.dispose()


def baseline(url: str, now: float) -> dict:
    """The SQL each request ran on the hub's event loop before the ledger, timed here."""
    from sqlalchemy import text

    engine = store.make_engine(url)
    secs = "(COALESCE(ended, last_seen, started) - started)"
    out = {}
    with engine.connect() as con:
        def scrape():
            con.execute(text(f"SELECT team, resource, accelerator, COUNT(*), SUM(gpus) FROM {store.TABLE} WHERE ended IS NULL "
                             "GROUP BY team, resource, accelerator")).all()
            con.execute(text(f"SELECT team, resource, SUM({secs}), SUM({secs} * gpus) FROM {store.TABLE} "
                             "WHERE end_reason IS NULL OR end_reason != 'failed-start' GROUP BY team, resource")).all()
        out["scrape"] = timed(scrape, 3)
        period = totals.Period(now - 30 * DAY, now, now)
        out["team"] = timed(lambda: totals.query(con, period, ("team",)), 3)
        out["person"] = timed(lambda: totals.query(con, period, ("person", "resource", "accelerator", "team")), 1)
    engine.dispose()
    return out


def measure(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        hub = HubProcess(values(state), state)
        hub.start(timeout=300)  # creates and migrates the database
        hub.stop()
        now = time.time()
        t = time.perf_counter()
        fill(state / "jupyterhub.sqlite", n, now)
        filled = time.perf_counter() - t
        t = time.perf_counter()
        summarize(f"sqlite:///{state / 'jupyterhub.sqlite'}")
        summarized = time.perf_counter() - t
        before = baseline(f"sqlite:///{state / 'jupyterhub.sqlite'}", now)
        t = time.perf_counter()
        hub.start(timeout=600)
        started = time.perf_counter() - t
        try:
            admin = hub.login("ada", PASSWORD, timeout=120)
            token = {"Authorization": f"token {hub.token(admin, 'local:ada')}"}
            health = HealthPoller(hub.url)
            figures = {}
            for name, path, repeat in (("floor", "/hub/api/user", 10), ("scrape", "/hub/metrics", 10), ("team", "/hub/usage?by=team", 5),
                                       ("person", "/hub/usage?by=person,resource,accelerator,team", 3)):
                get = (lambda p=path: httpx.get(f"{hub.url}{p}", headers=token, timeout=120).raise_for_status()) \
                    if name in ("floor", "scrape") else (lambda p=path: admin.get(p).raise_for_status())
                get()  # warm
                health.reset()
                figures[name] = (timed(get, repeat), health.longest())
            health.stop.set()
            health.thread.join()
        finally:
            hub.stop()
    print(f"\n{n:,} records (filled in {filled:.1f} s; daily summaries as migration 2 makes them {summarized:.1f} s; "
          f"hub start {started:.1f} s)")
    print(f"  {'floor: GET /hub/api/user, same token':<52} median {figures['floor'][0] * 1000:8.1f} ms   (what any "
          "authenticated request costs here now)")
    for name, label in (("scrape", "GET /hub/metrics"), ("team", "GET /hub/usage by team"),
                        ("person", "GET /hub/usage by person,resource,accelerator,team")):
        median, longest = figures[name]
        print(f"  {label:<52} median {median * 1000:8.1f} ms   longest /hub/health meanwhile {longest * 1000:6.1f} ms   "
              f"(before, its SQL on the loop: {before[name] * 1000:8.1f} ms)")


def budget_check(n: int) -> None:
    """A start's budget check with n records of the team in its window (the sums in memory after the first)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'usage.sqlite'}"
        store.migrate(url)
        now = time.time()
        fill(Path(tmp) / "usage.sqlite", n, now)
        team = Team("cv-course", "CV", "", (), (), (), (), (), None, None, (Budget("gpu", 10.0**9, 30), Budget("cpu", 10.0**9, 30)))
        hub = store.Store(url)
        t = time.perf_counter()
        budget.check(hub, team, 1, 4.0, "local:new/", now)
        first = time.perf_counter() - t
        median = timed(lambda: budget.check(hub, team, 1, 4.0, "local:new/", now), 200)
        hub.dispose()
    print(f"\nbudget check of a start, {n:,} records: first (restores the ledger, sums the windows) {first:.2f} s, "
          f"then median {median * 1000:.3f} ms (target: under 5 ms)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"targets: scrape < 50 ms at 10^6; no /hub/health answer over 100 ms (polled every {HEALTH_EVERY * 1000:.0f} ms)")
    for n in sizes:
        measure(n)
    budget_check(max(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
