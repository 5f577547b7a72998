"""A server's start with a GPU by Dynamic Resource Allocation against the same start with an extended resource,
on the cluster tier's real control plane (a script, not a test): `.venv/bin/python benchmarks/dra_bench.py [-n N]`.

One hub (tests/cluster/hub.py's ClusterHub: the shipped wheel environment, the chart's env, values and RBAC,
with the chart's DeviceClasses, ResourceClaimTemplates and admission policy applied) and two kwok nodes:
- bench-dra-1 publishes 8 whole GPUs in a ResourceSlice (driver gpu.amd.com), standing in for the DRA driver;
  the kind `dra-gpu` asks for one through the chart's ResourceClaimTemplate;
- bench-ext-1 advertises `amd.com/gpu: 8` as a device plugin does; the kind `ext-gpu` asks for `amd.com/gpu: 1`.
Both kinds run the same resource with the same node selector shape, so the pods differ only in how they ask.

1. Start latency: N rounds (default 100); each round starts one server of each kind, in a random order, from
   the REST API, then stops it. Per start: seconds from the POST until the pod is Running (kwok) and until the
   hub says the server is ready (the tier's stand-in server answers); median and p95 per kind, and the ratio.
   Every stop is waited for (the pod gone, and for DRA its claim deleted) before the next start.
2. API writes per start, from the API server's audit log over W rounds (default 10): the writes in the hub's
   namespace by each actor (the hub's ServiceAccount, the scheduler, the resourceclaim controller, kwok, ...),
   per start and stop, for each kind. The goal (issue 27): the hub's own writes are the same, and DRA adds at
   most the one claim the control plane creates from the template.

Timings are on a 2-core machine shared with other work: compare the two kinds within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from cluster.access import Cluster  # noqa: E402
from cluster.chart import VALUES  # noqa: E402
from cluster.course import _node  # noqa: E402
from cluster.hub import ClusterHub, people_overlay  # noqa: E402
from cluster.test_admission import render  # noqa: E402
from shipped import shipped_venv  # noqa: E402
from support import wait_for  # noqa: E402

DRIVER = "gpu.amd.com"
KINDS = ("dra-gpu", "ext-gpu")
RESOURCE = "bench-gpu"
PERSON = "solo"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
OVERLAY = {"catalog": {
    "deviceClasses": {"bench-mi210": {"driver": DRIVER, "selectors": {"productName": "AMD Instinct MI210"}}},
    "accelerators": {
        "dra-gpu": {"displayName": "MI210 (DRA)", "devices": {"deviceClass": "bench-mi210"}, "nodeSelector": {"node-type": "bench-dra"},
                    "capacity": 8},
        "ext-gpu": {"displayName": "MI210 (device plugin)", "gpu": {"resource": "amd.com/gpu", "count": 1},
                    "nodeSelector": {"node-type": "bench-ext"}},
    },
    "resources": {RESOURCE: {"displayName": "GPU notebook", "image": "scipy", "cpu": {"request": 1, "limit": 2},
                             "memory": {"request": "1Gi", "limit": "2Gi"}, "accelerators": list(KINDS)}},
    "teams": {"bench": {"resources": [RESOURCE]}}}}


def add_nodes(cluster: Cluster) -> None:
    capacity = {"cpu": "64", "memory": "512Gi"}
    cluster.api.create("/api/v1/nodes", _node("bench-dra-1", {"node-type": "bench-dra"}, capacity, []))
    cluster.api.create("/api/v1/nodes", _node("bench-ext-1", {"node-type": "bench-ext"}, {**capacity, "amd.com/gpu": "8"}, []))
    cluster.plane.wait_until(lambda: cluster.ready_nodes() >= {"bench-dra-1", "bench-ext-1"}, 60, "the bench nodes")
    for name in ("bench-dra-1", "bench-ext-1"):
        cluster.give_address(name)
    devices = [{"name": f"gpu-{i}", "attributes": {"productName": {"string": "AMD Instinct MI210"}, "type": {"string": "amdgpu"}},
                "capacity": {"memory": {"value": "64Gi"}}} for i in range(8)]
    cluster.api.create("/apis/resource.k8s.io/v1/resourceslices", {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "bench-dra-1-gpus"},
        "spec": {"driver": DRIVER, "nodeName": "bench-dra-1", "pool": {"name": "bench-dra-1", "generation": 1, "resourceSliceCount": 1},
                 "devices": devices}})


class Bench:
    def __init__(self, cluster: Cluster, venv: Path, state: Path):
        self.cluster = cluster
        self.ns = cluster.new_namespace("bench-dra")
        state.mkdir(parents=True, exist_ok=True)
        overlay = people_overlay(state / "overlay.yaml", {PERSON: ["bench"]}, OVERLAY)
        objects = render(cluster, self.ns, "templates/devices/claims.yaml", "templates/admission/policy.yaml",
                         values=(*VALUES, overlay))
        cluster.kubectl("apply", "-n", self.ns, "-f", "-", input=objects)
        self.hub = ClusterHub(cluster, self.ns, venv, state, overlays=(overlay,))
        self.hub.start()
        client = self.hub.login(PERSON, f"{PERSON}-demo-pass")
        self.api: httpx.Client = self.hub.api(self.hub.token(client, f"local:{PERSON}"))
        self.user = f"local:{PERSON}"

    def pods(self) -> list[dict]:
        return self.cluster.api.get(f"/api/v1/namespaces/{self.ns}/pods?labelSelector=app.kubernetes.io/component=singleuser-server")["items"]

    def claims(self) -> list[dict]:
        return self.cluster.api.get(f"/apis/resource.k8s.io/v1/namespaces/{self.ns}/resourceclaims")["items"]

    def running(self) -> bool:
        return any(p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp") for p in self.pods())

    def ready(self) -> bool:
        server = self.api.get(f"/users/{self.user}").json().get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def start(self, kind: str) -> tuple[float, float]:
        """(seconds to the pod Running, seconds to the server ready) for one start."""
        began = time.monotonic()
        r = self.api.post(f"/users/{self.user}/server", json={"resource": RESOURCE, "accelerator": kind}, timeout=120)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"start on {kind}: {r.status_code} {r.text[:300]}")
        wait_for(self.running, f"the pod of a {kind} start Running", 120, 0.02)
        running = time.monotonic() - began
        wait_for(self.ready, f"the {kind} server ready", 120, 0.02)
        return running, time.monotonic() - began

    def stop(self) -> None:
        r = self.api.delete(f"/users/{self.user}/server", timeout=120)
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stop: {r.status_code} {r.text[:300]}")
        wait_for(lambda: not self.api.get(f"/users/{self.user}").json().get("servers"), "the hub to forget the server", 120, 0.05)
        wait_for(lambda: not self.pods() and not self.claims(), "the pod and its claim gone", 120, 0.05)

    def close(self) -> None:
        self.hub.stop()


def pct(values: list[float], p: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


def audit_writes(cluster: Cluster, namespace: str, offset: int) -> Counter:
    time.sleep(1)  # the audit backend writes as requests complete
    with open(cluster.audit_log) as f:
        f.seek(offset)
        events = [json.loads(line) for line in f if line.strip()]
    out: Counter = Counter()
    for e in events:
        ref = e.get("objectRef") or {}
        if e.get("stage") != "ResponseComplete" or e["verb"] not in WRITES or ref.get("namespace") != namespace:
            continue
        who = e["user"]["username"].removeprefix("system:serviceaccount:").replace(f"{namespace}:", "")
        what = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        dry = " (dry run)" if "dryRun=" in e.get("requestURI", "") else ""
        out[f"{who}: {e['verb']} {what}{dry}"] += 1
    return out


@contextlib.contextmanager
def bench_cluster(keep: bool):
    """The cluster with the two bench nodes and the hub; everything stopped (and the state removed) at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="dra-bench-"))
    if keep:
        print(f"state: {tmp}")
    stack = contextlib.ExitStack()
    with stack:
        if not keep:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        cluster = Cluster.start(tmp / "cluster")
        stack.callback(lambda: print(f"still running after stop: {cluster.stop() or 'nothing'}", file=sys.stderr))
        add_nodes(cluster)
        bench = Bench(cluster, shipped_venv(), tmp / "hub")
        stack.callback(bench.close)
        yield bench


def latencies(bench: Bench, rounds: int) -> dict:
    """kind -> ([seconds to Running], [seconds to ready]), the kinds alternating in a random order."""
    rng = random.Random(27)
    times: dict = {k: ([], []) for k in KINDS}
    for _ in range(rounds):
        for kind in rng.sample(KINDS, len(KINDS)):
            running, ready = bench.start(kind)
            times[kind][0].append(running)
            times[kind][1].append(ready)
            bench.stop()
    return times


def print_latencies(times: dict, rounds: int) -> None:
    print(f"Start latency over {rounds} starts per kind (same run, alternating in random order), seconds:")
    print(f"  {'kind':10} {'to Running: median':>19} {'p95':>7} {'to ready: median':>17} {'p95':>7}")
    for kind in KINDS:
        run, ready = times[kind]
        print(f"  {kind:10} {statistics.median(run):19.3f} {pct(run, 95):7.3f} {statistics.median(ready):17.3f} {pct(ready, 95):7.3f}")
    d, e = times["dra-gpu"], times["ext-gpu"]
    print(f"  DRA / extended resource: to Running {statistics.median(d[0]) / statistics.median(e[0]):.2f}x (median), "
          f"{pct(d[0], 95) / pct(e[0], 95):.2f}x (p95); to ready {statistics.median(d[1]) / statistics.median(e[1]):.2f}x "
          f"(median), {pct(d[1], 95) / pct(e[1], 95):.2f}x (p95)")


def print_writes(writes: dict, rounds: int) -> None:
    print(f"\nAPI writes in the hub's namespace per start and stop ({rounds} each, audit log), by actor:")
    for line in sorted(set(writes["dra-gpu"]) | set(writes["ext-gpu"])):
        a, b = writes["dra-gpu"][line] / rounds, writes["ext-gpu"][line] / rounds
        print(f"  {line:70} DRA {a:5.1f}   extended resource {b:5.1f}")
    for kind in KINDS:
        total = sum(writes[kind].values()) / rounds
        hub = sum(n for k, n in writes[kind].items() if k.startswith("teamhub-hub:")) / rounds
        claims = sum(n for k, n in writes[kind].items() if k.endswith("create resourceclaims")) / rounds
        print(f"  {kind}: {total:.1f} writes per start+stop in all, {hub:.1f} by the hub, {claims:.1f} claim created")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=100, help="measured starts per kind (default 100)")
    parser.add_argument("-w", "--write-rounds", type=int, default=10, help="starts per kind counted in the audit log")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs, audit log) and print it")
    args = parser.parse_args()
    with bench_cluster(args.keep) as bench:
        for kind in KINDS:  # warm-up: the home volume, the hub's first imports, the scheduler's caches
            bench.start(kind)
            bench.stop()
        writes = {}
        for kind in KINDS:
            offset = bench.cluster.audit_log.stat().st_size
            for _ in range(args.write_rounds):
                bench.start(kind)
                bench.stop()
            writes[kind] = audit_writes(bench.cluster, bench.ns, offset)
        print_latencies(latencies(bench, args.rounds), args.rounds)
        print_writes(writes, args.write_rounds)


if __name__ == "__main__":
    main()
