"""Figures for the hub (a script, not a test): `.venv/bin/python benchmarks/hub_bench.py`.

1. Launch-page render time for a person in 20 teams with a 500-resource catalog, next to KubeSpawner's
   stock profile form rendering the same allowed list, in the same run (target: ours within 1.2x).
2. Hub start-up time (process start until the API answers through the proxy) with that catalog, next to
   a hub with an empty catalog. Everything binds to 127.0.0.1 on free ports and is stopped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hub-image"))

from teamhub.catalog.access import Person, resolve  # noqa: E402
from teamhub.cli.demo import find_chp, hub_command, hub_environment, stop  # noqa: E402
from teamhub.hub import launchpage  # noqa: E402
from teamhub.values.source import Source  # noqa: E402
from teamhub.values.validation import check  # noqa: E402

HASH = "$2b$12$Xgnp62i4m6AkY2tuTo9bmuzSyf8FTrxbeRUIiQn9Lmoh/UsjXVrQe"


def big_values(n_resources=500, n_teams=40, member_of=20) -> dict:
    images = {f"img-{i}": {"name": f"registry.example/img-{i}", "tag": "1.0"} for i in range(20)}
    accelerators = {f"acc-{i}": {"displayName": f"Accelerator {i}", "gpu": {"resource": "amd.com/gpu", "count": 1},
                                 "nodeSelector": {"node-type": f"acc-{i}"}} for i in range(4)}
    resources = {}
    for i in range(n_resources):
        r = {"displayName": f"Environment {i}", "description": f"Environment number {i} for benchmarks",
             "category": f"Category {i % 8}", "image": f"img-{i % 20}",
             "cpu": {"request": 1 + i % 4, "limit": 2 + i % 4}, "memory": {"request": "4Gi", "limit": "8Gi"}}
        if i % 5 == 1:
            r["gpu"] = {"resource": "nvidia.com/gpu", "count": 1}
        elif i % 5 == 2:
            r["accelerators"] = ["acc-0", "acc-1"]
        resources[f"res-{i}"] = r
    keys = list(resources)
    per_team = n_resources // member_of  # the person's 20 teams together allow all 500
    teams = {f"team-{t}": {"resources": keys[(t % member_of) * per_team:((t % member_of) + 1) * per_team],
                           "quota": {"maxServers": 50, "maxGpus": 10}} for t in range(n_teams)}
    users = {"bench": {"passwordHash": HASH, "teams": [f"team-{t}" for t in range(member_of)]}}
    return {"auth": {"local": {"enabled": True, "users": users}},
            "catalog": {"images": images, "accelerators": accelerators, "resources": resources, "teams": teams}}


def empty_values() -> dict:
    return {"auth": {"local": {"enabled": True, "users": {"bench": {"passwordHash": HASH}}}}, "catalog": {}}


def checked_from(data: dict):
    result = check(Source(data=data))
    if not result.ok:
        raise SystemExit("\n".join(str(p) for p in result.errors))
    return result


def kubespawner_profiles(catalog, access) -> list:
    """The same allowed list as KubeSpawner profiles, the way an operator would write profile_list."""
    out = []
    for res in access.resources:
        override = {"image": catalog.images[res.image].ref, "cpu_guarantee": float(str(res.cpu_request)),
                    "mem_guarantee": str(res.memory_request).replace("i", "")}
        profile = {"display_name": res.display_name, "description": res.description, "slug": res.key,
                   "kubespawner_override": override}
        if res.accelerators:
            profile["profile_options"] = {"accelerator": {"display_name": "Accelerator", "choices": {
                a: {"display_name": catalog.accelerators[a].display_name,
                    "kubespawner_override": {"node_selector": dict(catalog.accelerators[a].node_selector)}}
                for a in res.accelerators}}}
        out.append(profile)
    return out


def time_it(fn, repeat: int) -> list:
    fn()  # warm up (template compile, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_render(repeat: int) -> None:
    import kubespawner.spawner as ks
    from kubespawner import KubeSpawner

    ks.load_config = lambda **kwargs: None  # no cluster needed to render a form
    ks.shared_client = lambda *args, **kwargs: None
    checked = checked_from(big_values())
    catalog = checked.catalog
    person = Person("local:bench")
    access = resolve(catalog, person)
    profiles = kubespawner_profiles(catalog, access)
    spawner = KubeSpawner(_mock=True)
    ours = time_it(lambda: launchpage.render(catalog, person), repeat)
    stock = time_it(lambda: spawner._render_options_form(profiles), repeat)
    o, s = statistics.median(ours), statistics.median(stock)
    print(f"launch page, person in {len(access.teams) - ('everyone' in access.teams)} teams, "
          f"{len(access.resources)} of {len(catalog.resources)} resources allowed ({repeat} runs, median):")
    print(f"  teamhub launch page (resolve + render):  {o * 1000:8.2f} ms  ({len(launchpage.render(catalog, person)) // 1024} KiB)")
    print(f"  KubeSpawner stock profile form:          {s * 1000:8.2f} ms  ({len(spawner._render_options_form(profiles)) // 1024} KiB)")
    print(f"  ratio ours/stock:                        {o / s:8.2f}x  (target <= 1.2x)")


def hub_startup(values: dict, runs: int) -> list:
    times = []
    chp = find_chp(ROOT)
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp)
            (state / "homes").mkdir()
            path = state / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            from teamhub.cli.demo import free_port

            port = free_port()
            env = hub_environment(path, port, state, chp)
            t0 = time.perf_counter()
            proc = subprocess.Popen(hub_command(state), env=env, cwd=state, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                while True:
                    if proc.poll() is not None:
                        raise SystemExit(f"hub exited with {proc.returncode}")
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/hub/api/", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.05)
                times.append(time.perf_counter() - t0)
            finally:
                stop(proc)
    return times


def bench_startup(runs: int) -> None:
    big, empty = big_values(), empty_values()
    for data in (big, empty):
        data["sessions"] = {"idleCullMinutes": 0}
    with_catalog = statistics.median(hub_startup(big, runs))
    without = statistics.median(hub_startup(empty, runs))
    print(f"hub start-up until the API answers through the proxy ({runs} runs, median):")
    print(f"  with the 500-resource catalog:  {with_catalog:6.2f} s")
    print(f"  with an empty catalog:          {without:6.2f} s")
    print(f"  difference:                     {with_catalog - without:+6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="render repetitions")
    parser.add_argument("--startup-runs", type=int, default=2, help="hub starts per variant (0 skips)")
    args = parser.parse_args()
    bench_render(args.repeat)
    if args.startup_runs:
        bench_startup(args.startup_runs)


if __name__ == "__main__":
    main()
