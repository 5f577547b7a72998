"""GPU hand-over through Kueue (issue 26): from a running GPU server's pod deleted to the first queued one Running,
against the same pod shape's own start without the queue. A script that prints figures, not a test.
`.venv/bin/python benchmarks/queue_handover_bench.py [--handovers 50]`

On the cluster tier's real control plane with Kueue's real manager (tests/cluster: built by `make setup`) and kwok
nodes: the chart's queue objects for config/examples/gpu-queue.yaml brought to the course's two Strix Halo GPUs, both
cv-course's. Two queued pods run; a third waits (gated). Each hand-over deletes the older running pod (grace 0) and
polls (every 20 ms) until the waiting one is Running; then the next one joins the line. Interleaved, the baseline:
the same pod without a queue label in a namespace Kueue does not manage, on a free MI300X node, from create to
Running (the pod's own start on kwok). The machine is shared: compare the columns of one run, not runs.
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
for sub in ("hub-image", "tests"):
    sys.path.insert(0, str(ROOT / sub))

from cluster.access import Cluster  # noqa: E402
from cluster.kueue import Kueue  # noqa: E402
from cluster.test_queue import OVERLAY, render_queue  # noqa: E402

POLL = 0.02  # seconds between two looks at a pod


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def pod(name: str, queued: bool) -> dict:
    labels = {"teamhub.dev/team": "cv-course"}
    if queued:
        labels["kueue.x-k8s.io/queue-name"] = "team-cv-course"
    kind = "strix-halo" if queued else "mi300x"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"nodeSelector": {"node-type": kind}, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "notebook", "image": "registry.example/notebook:1",
                                     "resources": {"limits": {"amd.com/gpu": "1"}}}]}}


def phase(cluster, ns: str, name: str) -> tuple:
    p = cluster.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    return p.get("status", {}).get("phase"), bool(p["spec"].get("schedulingGates"))


def until(check, timeout: float = 60) -> float:
    """Poll `check` until true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("a pod never reached its state (see the cluster's logs)")
        time.sleep(POLL)
    return time.monotonic()


def running(cluster, ns: str, name: str) -> bool:
    return phase(cluster, ns, name) == ("Running", False)


def baseline(cluster, ns: str, i: int) -> float:
    name = f"plain-{i}"
    began = time.monotonic()
    cluster.api.create(f"/api/v1/namespaces/{ns}/pods", pod(name, queued=False))
    took = until(lambda: running(cluster, ns, name)) - began
    cluster.api.delete(f"/api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handovers", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="teamhub-queue-bench-") as tmp:
        cluster = Cluster.start(Path(tmp) / "cluster")
        kueue = Kueue(cluster, Path(tmp) / "kueue")
        try:
            kueue.start()
            users = kueue.managed_namespace("bench-users")
            plain = "bench-plain"  # not managed by Kueue, no Pod Security enforcement (the pods are minimal)
            cluster.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plain}})
            until(lambda: cluster.api.ok(f"/api/v1/namespaces/{plain}/serviceaccounts/default"), 30)
            overlay = Path(tmp) / "overlay.yaml"
            overlay.write_text(yaml.safe_dump(OVERLAY))
            cluster.kubectl("apply", "-f", "-", input=render_queue(cluster, users, overlay))
            path = f"/api/v1/namespaces/{users}/pods"
            names = [f"student-{i}" for i in range(args.handovers + 3)]
            for name in names[:2]:
                cluster.api.create(path, pod(name, queued=True))
            for name in names[:2]:
                until(lambda name=name: running(cluster, users, name), 120)
            handovers, plain_starts = [], []
            for i in range(args.handovers):
                held, nxt = names[i], names[i + 2]
                cluster.api.create(path, pod(nxt, queued=True))
                until(lambda nxt=nxt: phase(cluster, users, nxt) == ("Pending", True))  # in line, gated
                plain_starts.append(baseline(cluster, plain, i))
                freed = time.monotonic()
                cluster.api.delete(f"{path}/{held}?gracePeriodSeconds=0")
                handovers.append(until(lambda nxt=nxt: running(cluster, users, nxt)) - freed)
            print(f"{args.handovers} hand-overs (2 Strix Halo GPUs, one pod always waiting), seconds:")
            for label, xs in (("GPU freed -> next queued Running", handovers), ("baseline: plain pod create -> Running", plain_starts)):
                print(f"  {label:40s} median {statistics.median(xs):6.3f}   p95 {percentile(xs, 95):6.3f}")
            extra = statistics.median(handovers) - statistics.median(plain_starts)
            print(f"  the queue adds {extra:+.3f} s (median) to the pod's own start; target: within 2 s")
        finally:
            problems = kueue.stop()
            leftover = cluster.stop()
            if problems or leftover:
                print(f"teardown: {problems} {leftover}", file=sys.stderr)


if __name__ == "__main__":
    main()
