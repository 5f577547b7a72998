"""Figures for the running hub, over HTTP through the real proxy (a script, not a test): `make bench`.

1. Launch page: GET /hub/spawn for a person in 20 teams who may launch every resource, at 20, 100 and 500
   resources, as a logged-in person with a running (named) server sees it, on every hub. teamhub: its page
   (the server list, a GPU- and a CPU-hour budget line for each of the 20 teams, the cards). KS static / KS
   callable: the same hub and person with KubeSpawner 7.1.0's profile form instead (static `profile_list`:
   rendered once; callable: rendered per request), see kubespawner_hub_config.py. plain: JupyterHub 6.1.1 with
   KubeSpawner's static form and nothing of teamhub (plain_profiles_config.py). Requests are interleaved (one
   to each hub in every round, in a new random order each round, same run), after a warm-up. Targets
   (issue 25): teamhub median <= 1.0x the static form's (KS static and plain), teamhub p95 <= 1.5x its median. The floor column is GET /hub/health through
   the same proxy (what any request costs here); the auth floor is GET /hub/api/user with the person's login
   cookie (what any page for a logged-in person costs here).
2. Login bursts: 30 concurrent local logins (each then opens the launch page) while GET /hub/health is
   polled every 20 ms; the p99 of those polls per burst (target: < 100 ms in every burst).
3. Hub memory (RSS of the hub process) with a 1,000-resource / 2,000-team catalog next to the same hub
   with a 5-resource catalog (target: <= 1.15x), after start-up + one login, and after the bursts.

Everything binds to 127.0.0.1 on free ports and is stopped afterwards. The machine's other load shows in
absolute figures; the ratios come from interleaved requests in one run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from hubprocess import HubProcess, offered_resources  # noqa: E402
from hubvalues import BENCH_USER, PASSWORD, RUNNING_SERVER, catalog_values, page_values, running_choice  # noqa: E402

KS_CONFIG = HERE / "kubespawner_hub_config.py"
PLAIN_CONFIG = HERE / "plain_profiles_config.py"
BURST = 30
POLL_SECONDS = 0.02


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


def write_values(folder: Path, values: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def start_all(hubs: dict) -> dict:
    """Start hubs side by side; name -> start-up seconds (process start until the API answers)."""
    def one(hub):
        t0 = time.perf_counter()
        hub.start(timeout=300)
        return time.perf_counter() - t0
    with ThreadPoolExecutor(len(hubs)) as pool:
        return dict(zip(hubs, pool.map(one, hubs.values()), strict=True))


def stop_all(hubs: dict) -> None:
    for hub in hubs.values():
        hub.stop()


# --- 1. the launch page ------------------------------------------------------------------------------

PLAIN = "plain JupyterHub static"


def page_hubs(values: Path, tmp: Path) -> dict:
    ks = {f"KubeSpawner {kind}": HubProcess(values, tmp / kind, extra_env={"BENCH_PROFILES": kind}, config=KS_CONFIG)
          for kind in ("static", "callable")}
    return {"teamhub": HubProcess(values, tmp / "teamhub"), **ks, PLAIN: HubProcess(values, tmp / "plain", config=PLAIN_CONFIG)}


def start_running_server(name: str, hub: HubProcess, client: httpx.Client, n: int) -> None:
    """The person's state, the same on every hub: a named server started from the launch page and running (on
    teamhub's hubs its usage record is open, so the budget lines count it), before the page is measured."""
    user, fields = (BENCH_USER, {"profile": running_choice(n)["resource"]}) if name == PLAIN else (f"local:{BENCH_USER}", running_choice(n))
    client.get(f"/hub/spawn/{user}/{RUNNING_SERVER}")
    r = client.post(f"/hub/spawn/{user}/{RUNNING_SERVER}?_xsrf={client.cookies.get('_xsrf')}", data=fields)
    if r.status_code != 302:
        raise SystemExit(f"{name}: starting the person's server answered {r.status_code}: {r.text[:300]}")
    hub.wait_ready(hub.api(hub.token(client, user)), user, timeout=180, server=RUNNING_SERVER)


def check_page(name: str, html: str, n: int) -> None:
    """Each hub shows what the benchmark says it measures: every environment; on teamhub's hubs the running server
    in the server list, and on teamhub's page a budget line for each of the person's 20 teams."""
    offered = len(offered_resources(html)) if name == "teamhub" else html.count('name="profile"')
    if offered != n:
        raise SystemExit(f"{name}: the launch page offers {offered} environments, not {n}")
    if name != PLAIN and f'data-server-name="{RUNNING_SERVER}"' not in html:
        raise SystemExit(f"{name}: the launch page does not list the person's running server")
    lines = html.count("GPU-hours left")
    if name == "teamhub" and lines != 20:
        raise SystemExit(f"teamhub: the launch page shows {lines} GPU-hour budget lines, not 20")


def bench_page(sizes, requests: int, tmp: Path) -> list:
    rows = []
    for n in sizes:
        values = write_values(tmp / f"page-{n}", page_values(n))
        hubs = page_hubs(values, tmp / f"page-{n}")
        try:
            start_all(hubs)
            clients = {name: hub.login(BENCH_USER, PASSWORD) for name, hub in hubs.items()}
            with ThreadPoolExecutor(len(hubs)) as pool:  # side by side: each waits for its JupyterLab
                list(pool.map(start_running_server, hubs, hubs.values(), clients.values(), [n] * len(hubs)))
            for name, client in clients.items():
                check_page(name, client.get("/hub/spawn").text, n)
            floor_client = httpx.Client(base_url=hubs["teamhub"].url, timeout=30)
            auth_client = hubs["teamhub"].login(BENCH_USER, PASSWORD)
            auth_client.headers.update(hubs["teamhub"].xsrf_headers(auth_client))
            targets = [(name, client, "/hub/spawn") for name, client in clients.items()] + [
                ("floor", floor_client, "/hub/health"), ("auth floor", auth_client, "/hub/api/user")]
            times: dict = {name: [] for name, _, _ in targets}
            order = random.Random(n)  # each round in its own order: no target always follows the same other one
            for i in range(requests + 10):  # the first 10 rounds warm up (template compile, caches)
                for name, client, path in order.sample(targets, len(targets)):
                    t0 = time.perf_counter()
                    r = client.get(path)
                    dt = time.perf_counter() - t0
                    if r.status_code != 200:
                        raise SystemExit(f"{name}: GET {path} answered {r.status_code}")
                    if i >= 10:
                        times[name].append(dt)
            size = len(clients["teamhub"].get("/hub/spawn").content) // 1024
            rows.append((n, size, {name: (statistics.median(t), percentile(t, 95)) for name, t in times.items()}))
        finally:
            stop_all(hubs)
        print_page_row(*rows[-1], requests=requests, first=len(rows) == 1)
    return rows


def print_page_row(n: int, size_kib: int, figures: dict, requests: int, first: bool) -> None:
    if first:
        print(f"launch page GET /hub/spawn through the proxy, person in 20 teams, {requests} requests each, interleaved")
        print("  the person has a running (named) server on every hub; on teamhub's hubs every team has a GPU- and a")
        print("  CPU-hour budget. teamhub: its launch page (server list, 20 budget lines, the cards); KS static / KS")
        print("  callable: the same hub and person with KubeSpawner 7.1.0's profile form instead of teamhub's (static")
        print("  profile_list: rendered once; callable: rendered per request); plain: JupyterHub 6.1.1 alone with")
        print("  KubeSpawner's form for a static profile_list. median / p95 in ms; ratios of medians; targets:")
        print("  teamhub/static and teamhub/plain <= 1.0 (issue 25), teamhub p95/median <= 1.5")
        print("  auth floor: GET /hub/api/user with the same login cookie (JupyterHub's cookie check and user lookup,")
        print("  which every launch page pays first); 'above auth floor' compares what each page adds to it")
        print(f"  {'resources':>9} | {'teamhub':>17} | {'KS static':>17} | {'plain static':>17} | {'KS callable':>17} |"
              f" {'floor /health':>17} | {'auth floor':>17} | {'/static':>7} | {'/plain':>7} | {'/callable':>9} |"
              f" {'p95/med':>7} | {'above auth floor':>17}")
    th, st, pl, cb, fl, af = (figures[k] for k in ("teamhub", "KubeSpawner static", PLAIN, "KubeSpawner callable", "floor",
                                                  "auth floor"))
    print(f"  {n:>9} | {ms(th[0])} /{ms(th[1])} | {ms(st[0])} /{ms(st[1])} | {ms(pl[0])} /{ms(pl[1])} |"
          f" {ms(cb[0])} /{ms(cb[1])} | {ms(fl[0])} /{ms(fl[1])} | {ms(af[0])} /{ms(af[1])} | {th[0] / st[0]:7.2f} |"
          f" {th[0] / pl[0]:7.2f} | {th[0] / cb[0]:9.2f} | {th[1] / th[0]:7.2f} |"
          f" {ms(th[0] - af[0])} vs{ms(st[0] - af[0])}   (page {size_kib} KiB)", flush=True)


# --- 2. login bursts -------------------------------------------------------------------------------

def login_burst(hub: HubProcess, names: list) -> dict:
    """30 people log in at once and open the launch page; /hub/health is polled every 20 ms meanwhile."""
    latencies: list = []
    done = threading.Event()

    def poll():
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            due = time.perf_counter()
            while not done.is_set():
                t0 = time.perf_counter()
                client.get("/hub/health")
                latencies.append(time.perf_counter() - t0)
                due = max(due + POLL_SECONDS, time.perf_counter() - POLL_SECONDS)
                time.sleep(max(0.0, due - time.perf_counter()))

    def person(name):
        client = hub.login(name, PASSWORD, timeout=300)  # 30 bcrypt checks queue up on a small machine
        try:
            r = client.get("/hub/spawn")
        finally:
            client.close()
        if r.status_code != 200 or not offered_resources(r.text):
            raise SystemExit(f"{name}: launch page answered {r.status_code}")

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(person, names))
    finally:
        done.set()
        poller.join()
    return {"seconds": time.perf_counter() - t0, "polls": len(latencies), "p99": percentile(latencies, 99),
            "max": max(latencies), "median": statistics.median(latencies)}


def rss_mib(hub: HubProcess) -> float:
    return psutil.Process(hub.proc.pid).memory_info().rss / 2**20


def settle(hub: HubProcess, name: str) -> float:
    """One person logs in and opens the launch page; then the hub's resident memory."""
    client = hub.login(name, PASSWORD)
    try:
        client.get("/hub/spawn").raise_for_status()
    finally:
        client.close()
    time.sleep(1)
    return rss_mib(hub)


def bench_bursts_and_memory(bursts: int, tmp: Path) -> None:
    users = [f"u{i:03d}" for i in range(bursts * BURST + 1)]
    catalogs = {"5 resources / 5 teams": catalog_values(5, 5, len(users), member_of=5),
                "1,000 resources / 2,000 teams": catalog_values(1000, 2000, len(users))}
    hubs = {name: HubProcess(write_values(tmp / f"site-{i}", values), tmp / f"site-{i}") for i, (name, values) in enumerate(catalogs.items())}
    try:
        startup = start_all(hubs)
        memory = {name: [settle(hub, users[-1])] for name, hub in hubs.items()}
        small, big = memory.values()
        print(f"hub memory (RSS of the hub process) after start-up and one login: 5 resources {small[0]:.1f} MiB, "
              f"1,000 resources / 2,000 teams {big[0]:.1f} MiB, ratio {big[0] / small[0]:.2f} (target <= 1.15)", flush=True)
        print(f"login bursts: {BURST} concurrent local logins (each opens the launch page), GET /hub/health every "
              f"{POLL_SECONDS * 1000:.0f} ms; target p99 < 100 ms in every burst")
        for name, hub in hubs.items():
            for b in range(bursts):
                f = login_burst(hub, users[b * BURST:(b + 1) * BURST])
                print(f"  {name:<30} burst {b + 1}: p99 {ms(f['p99'])} ms  max {ms(f['max'])} ms  median {ms(f['median'])} ms"
                      f"  ({f['polls']} polls, {f['seconds']:.1f} s)", flush=True)
            memory[name].append(rss_mib(hub))
        print(f"hub memory after {bursts * BURST} more logins: 5 resources {small[1]:.1f} MiB, 1,000 resources / 2,000 teams "
              f"{big[1]:.1f} MiB, ratio {big[1] / small[1]:.2f}")
        print("hub start-up until the API answers through the proxy (started side by side): " +
              ", ".join(f"{name} {s:.1f} s" for name, s in startup.items()))
    finally:
        stop_all(hubs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,500", help="catalog sizes for the launch page")
    parser.add_argument("--requests", type=int, default=200, help="launch-page requests per hub and size")
    parser.add_argument("--bursts", type=int, default=4, help="login bursts per hub (0 skips bursts and memory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="teamhub-bench-") as tmp:
        if args.requests:
            bench_page([int(n) for n in args.sizes.split(",")], args.requests, Path(tmp))
        if args.bursts:
            bench_bursts_and_memory(args.bursts, Path(tmp))


if __name__ == "__main__":
    main()
