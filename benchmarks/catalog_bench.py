"""Catalog scale benchmark (a script that prints figures, not a test).

Generates a catalog of 1,000 resources, 200 images and 2,000 teams, then prints:
- load + validate time and peak memory, next to a baseline measured in the same run (PyYAML with
  LibYAML plus a bare jsonschema pass over the same text, no line numbers, no semantic checks);
- resolution time per user for a user in 20 teams, and the start-request check.
Targets: validate under 1 s, resolution under 1 ms per user.

    .venv/bin/python benchmarks/catalog_bench.py [--resources N --images N --teams N --repeat N]
"""

from __future__ import annotations

import argparse
import resource as rlimit
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub-image"))

from teamhub.catalog import loader
from teamhub.catalog.access import Person, check_request, resolve  # noqa: E402
from teamhub.values import validation  # noqa: E402
from teamhub.values.source import load_text  # noqa: E402

HASH = "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa"  # bcrypt of "test-pass" (not a demo account's published hash, which validation refuses)


def generate(n_resources: int, n_images: int, n_teams: int) -> str:
    doc = {
        "auth": {"admins": ["local:admin"], "local": {"enabled": True, "users": {
            "student": {"passwordHash": HASH, "teams": [f"team-{i}" for i in range(0, n_teams, n_teams // 20)][:20]},
        }}},
        "catalog": {
            "images": {f"image-{i}": {"name": f"registry.example/lab/image-{i}", "tag": f"2026.{i}"} for i in range(n_images)},
            "accelerators": {
                "strix-halo": {"displayName": "AMD Radeon 8060S", "gpu": {"resource": "amd.com/gpu", "count": 1},
                               "nodeSelector": {"node-type": "strix-halo"}},
                "l40s": {"displayName": "NVIDIA L40S", "gpu": {"resource": "nvidia.com/gpu", "count": 1},
                         "nodeSelector": {"node-type": "l40s"}},
            },
            "volumes": {"data": {"pvc": "data", "mountPath": "/data"}},
            "resources": {},
            "teams": {},
        },
        "sessions": {"defaultMinutes": 60, "maxMinutes": 480, "idleCullMinutes": 60},
    }
    for i in range(n_resources):
        res = {"displayName": f"Resource {i}", "description": "generated", "category": f"cat-{i % 10}",
               "image": f"image-{i % n_images}", "cpu": {"request": 2, "limit": 4}, "memory": {"request": "4Gi", "limit": "8Gi"}}
        if i % 3 == 1:
            res["gpu"] = {"resource": "amd.com/gpu", "count": 1}
        elif i % 3 == 2:
            res["accelerators"] = ["strix-halo", "l40s"]
            res["volumes"] = ["data"]
        doc["catalog"]["resources"][f"res-{i}"] = res
    for t in range(n_teams):
        doc["catalog"]["teams"][f"team-{t}"] = {
            "resources": [f"res-{(t * 7 + k) % n_resources}" for k in range(10)],
            "githubTeams": [f"org:team-{t}"],
            "quota": {"maxServers": 10, "maxGpus": 4},
        }
    doc["catalog"]["teams"]["everyone"] = {"resources": ["res-0"]}
    return yaml.safe_dump(doc, sort_keys=False)


def timed(fn, repeat: int):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--teams", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    text = generate(args.resources, args.images, args.teams)
    print(f"catalog: {args.resources} resources, {args.images} images, {args.teams} teams ({len(text) / 1e6:.1f} MB of YAML)")

    validator = validation.validator()
    _, baseline = timed(lambda: list(validator.iter_errors(yaml.load(text, Loader=yaml.CSafeLoader))), args.repeat)
    checked, ours = timed(lambda: loader.check(load_text(text, "bench.yaml")), args.repeat)
    assert checked.ok, [str(p) for p in checked.errors[:5]]

    tracemalloc.start()
    loader.check(load_text(text, "bench.yaml"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"baseline LibYAML load + bare jsonschema:   {baseline * 1000:8.1f} ms")
    print(f"teamhub load + validate (lines, semantic): {ours * 1000:8.1f} ms  ({ours / baseline:.2f}x baseline; target < 1000 ms)")
    print(f"peak traced memory during load + validate: {peak / 2**20:8.1f} MiB; process max RSS {rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    catalog = checked.catalog
    student = Person("local:student")
    github = Person("github:octo", frozenset(f"org:team-{t}" for t in range(0, args.teams, args.teams // 20)))
    n = 2000
    for label, person in (("local user in 20 teams", student), ("GitHub user in 20 teams", github)):
        access = resolve(catalog, person)
        start = time.perf_counter()
        for _ in range(n):
            resolve(catalog, person)
        per_user = (time.perf_counter() - start) / n
        print(f"resolve, {label}: {len(access.teams)} teams, {len(access.resources)} resources: {per_user * 1e6:7.1f} us/user (target < 1000 us)")
    access = resolve(catalog, student)
    key = access.resources[0].key
    start = time.perf_counter()
    for _ in range(n):
        check_request(catalog, student, {"resource": key}, access)
    print(f"check_request with a resolved person: {(time.perf_counter() - start) / n * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
