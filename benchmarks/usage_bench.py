"""Usage records benchmark (a script that prints figures, not a test).

Fills a fresh SQLite hub database (or a PostgreSQL one with --db URL) with usage records spread over a month,
then prints:
- `teamhub usage --by team,resource` over all of them (the query, and the whole command as a process);
- the extra cost of a start with a team budget (`budget.check`) with --window-records records of that team
  in its 30-day window. Target: under 5 ms per start with 100,000 records in the window.

    .venv/bin/python benchmarks/usage_bench.py [--records 1000000 --window-records 100000 --db URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hub-image"))

from teamhub.catalog.model import Budget, Team  # noqa: E402
from teamhub.usage import budget, store, totals  # noqa: E402

DAY = 86400
TEAMS = [f"team-{i}" for i in range(40)]
RESOURCES = ["cpu-small", "cpu-large", "course-cv", "course-nlp", "research-gpu"]


def fill(url: str, n: int, window_n: int, now: float) -> None:
    from sqlalchemy import text

    rnd = random.Random(14)
    engine = store.make_engine(url)
    cols = ", ".join(store.COLUMNS + ("ended", "end_reason"))
    sql = text(f"INSERT INTO {store.TABLE} ({cols}) VALUES ({', '.join(':' + c for c in store.COLUMNS + ('ended', 'end_reason'))})")
    batch = []
    with engine.begin() as con:
        for i in range(n):
            team = "budgeted" if i < window_n else rnd.choice(TEAMS)
            started = now - rnd.uniform(0, 30 * DAY)
            gpus = rnd.choice((0, 0, 1, 2))
            batch.append({"server": f"local:u{i % 5000}/", "person": f"local:u{i % 5000}", "team": team,
                          "resource": rnd.choice(RESOURCES), "accelerator": "mi300x" if gpus else None, "gpus": gpus,
                          "gpu_kind": "amd.com/gpu" if gpus else None, "cpu": rnd.choice((2.0, 4.0, 8.0)), "memory": 2**34,
                          "started": started, "ended": started + rnd.uniform(60, 4 * 3600), "end_reason": "stopped"})
            if len(batch) == 20000:
                con.execute(sql, batch)
                batch.clear()
        if batch:
            con.execute(sql, batch)
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--window-records", type=int, default=100_000)
    ap.add_argument("--db", help="a database URL (default: a new SQLite file)")
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite:///{Path(tmp.name) / 'jupyterhub.sqlite'}"
    now = time.time()
    store.migrate(url)
    t = time.perf_counter()
    fill(url, args.records, args.window_records, now)
    print(f"inserted {args.records:,} records ({args.window_records:,} of one team) in {time.perf_counter() - t:.1f} s")

    engine = store.make_engine(url)
    with engine.connect() as con:
        t = time.perf_counter()
        rows = totals.query(con, totals.Period(now - 30 * DAY, now, now), ("team", "resource"))
        print(f"usage totals by team,resource over a month: {time.perf_counter() - t:.2f} s ({len(rows)} rows)")
    if not args.db:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "teamhub", "usage", "--db", url.removeprefix("sqlite:///"), "--by", "team,resource",
                        "--format", "csv"], check=True, capture_output=True, env={"PYTHONPATH": str(ROOT / "hub-image")})
        print(f"`teamhub usage --by team,resource --format csv` as a command: {time.perf_counter() - t:.2f} s")

    team = Team("budgeted", "Budgeted", "", (), (), (), (), (), None, None,
                (Budget("gpu", 10.0 ** 9, 30), Budget("cpu", 10.0 ** 9, 30)))
    hub = store.Store(url)
    t = time.perf_counter()
    budget.check(hub, team, 1, 4.0, "local:new/", now)
    print(f"first start check of a team (fills the hub's one-minute cache of closed records): {time.perf_counter() - t:.2f} s")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        budget.check(hub, team, 1, 4.0, "local:new/", now)
        times.append(time.perf_counter() - t)
    hub.dispose()
    print(f"start check with gpuHours and cpuHours budgets, {args.window_records:,} records in the window: "
          f"median {statistics.median(times) * 1000:.2f} ms, p95 {sorted(times)[int(len(times) * 0.95)] * 1000:.2f} ms "
          "(target: under 5 ms)")
    engine.dispose()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
