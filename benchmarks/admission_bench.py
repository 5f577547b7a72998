"""Admission latency with the chart's ValidatingAdmissionPolicy (issue 16): a script that prints figures,
not a test. `.venv/bin/python benchmarks/admission_bench.py [--creates 200]`

On the cluster tier's real control plane (tests/cluster: etcd, kube-apiserver 1.37 built by `make setup`),
for generated catalogs of 20 and 1,000 resources: the hub's ServiceAccount dry-run creates the pod KubeSpawner
builds (a dry run goes through every admission step, the policy included, and stores nothing), N times in
a namespace guarded by the policy and N times, interleaved, in one without it (the baseline, same run).
Prints median and p99 round-trip per create, and the size of the policy's parameters (the ConfigMap, limit 1 MiB). (The API server's policy latency metric counts only denials
and evaluation errors, so the figure is the client's round trip; the machine is shared, so compare the two
columns of one run, not runs.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
for sub in ("hub-image", "tests", "tests/chart"):
    sys.path.insert(0, str(ROOT / sub))

from cluster.access import Cluster  # noqa: E402
from cluster.controlplane import ApiError  # noqa: E402
from cluster.test_admission import HUB, dry_run, plain_namespace, render  # noqa: E402
from test_admission_params import generated  # noqa: E402
from unit.hubhelpers import pod_manifests as manifests  # noqa: E402


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def params_size(rendered: str) -> int:
    """Bytes of the parameters ConfigMap's data, as the API server stores them."""
    cm = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ConfigMap")
    return sum(len(k) + len(v.encode()) for k, v in cm["data"].items())


def prepare(cluster, values: Path, guarded: bool) -> tuple:
    ns = plain_namespace(cluster, f"bench-{'on' if guarded else 'off'}")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=render(cluster, ns, "templates/hub/rbac.yaml", values=(values,)))
    if guarded:
        policy = render(cluster, ns, "templates/admission/policy.yaml", values=(values,))
        print(f"  parameters of {values.stem}: {params_size(policy) / 1024:.0f} KiB (a ConfigMap holds at most 1,024 KiB)")
        # server-side: a client-side apply's last-applied annotation (256 KiB at most) cannot hold large parameters
        cluster.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=policy)
    hub = cluster.service_account_api(ns, HUB)
    pod, _ = manifests(ns, "local:admin", {"resource": "res-1", "accelerator": "mi300x"}, values=values)
    if guarded:  # wait until the policy is in force: a foreign image is refused
        foreign = yaml.safe_load(yaml.safe_dump(pod))
        foreign["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1.37"
        deadline = time.monotonic() + 30
        while True:
            try:
                dry_run(hub, ns, foreign)
            except ApiError as exc:
                if "teamhub rule image" in str(exc):
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the policy never took effect")
            time.sleep(0.3)
    return ns, hub, pod


def measure(cluster, n_resources: int, creates: int, workdir: Path) -> None:
    values = workdir / f"catalog-{n_resources}.yaml"
    doc = generated(n_resources)
    # complete, as in the values the hub reads (the chart fills the fields a values file leaves out)
    doc["singleuser"]["securityContext"] = {"runAsUser": 1500, "runAsGroup": 100, "fsGroup": 100}
    values.write_text(yaml.safe_dump(doc), encoding="utf-8")
    sides = {"with policy": prepare(cluster, values, True), "without": prepare(cluster, values, False)}
    times: dict = {k: [] for k in sides}
    for _ in range(10):  # warm-up: connections, caches
        for ns, hub, pod in sides.values():
            dry_run(hub, ns, pod)
    for _ in range(creates):
        for label, (ns, hub, pod) in sides.items():
            start = time.perf_counter()
            dry_run(hub, ns, pod)
            times[label].append((time.perf_counter() - start) * 1000)
    size = len(values.read_text())
    print(f"\n{n_resources} resources (values {size / 1024:.0f} KiB), {creates} dry-run creates each, interleaved:")
    for label, ms in times.items():
        print(f"  {label:12s} median {statistics.median(ms):6.2f} ms   p99 {percentile(ms, 99):6.2f} ms")
    delta = statistics.median(times["with policy"]) - statistics.median(times["without"])
    print(f"  the policy adds {delta:+.2f} ms (median); every create was admitted, so no expression reached the "
          "API server's CEL cost limits (1,000,000 per expression, 10,000,000 per binding: a request over them fails)")
    for ns, _, _ in sides.values():
        cluster.delete_namespace(ns)
        name = f"{ns}-teamhub-user-pods"
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cluster.kubectl("delete", kind, name, "--ignore-not-found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="teamhub-admission-bench-") as tmp:
        cluster = Cluster.start(Path(tmp) / "cluster")
        try:
            for n in args.sizes:
                measure(cluster, n, args.creates, Path(tmp))
        finally:
            leftover = cluster.stop()
            if leftover:
                print(f"processes left running: {leftover}", file=sys.stderr)
    print("\nGoal: the policy's cost per pod create stays flat from 20 to 1,000 resources (lookups by key).")


if __name__ == "__main__":
    main()
