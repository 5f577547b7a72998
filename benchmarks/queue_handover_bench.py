"""GPU hand-over through Kueue (issue 26): from a running GPU server's pod deleted to the first queued one Running,
against the same pod shape's own start without the queue; and the hub's CPU per queued start against an unqueued one.
A script that prints figures, not a test.
`.venv/bin/python benchmarks/queue_handover_bench.py [--handovers 50] [--starts 8]`

On the cluster tier's real control plane with Kueue's real manager (tests/cluster: built by `make setup`) and kwok
nodes: the chart's queue objects for config/examples/gpu-queue.yaml brought to the course's two Strix Halo GPUs, both
cv-course's.

1. Hand-overs (pods, no hub): two queued pods run; a third waits (gated). Each hand-over deletes the older running pod
   (grace 0) and polls (every 20 ms) until the waiting one is Running; then the next one joins the line. Interleaved,
   the baseline: the same pod without a queue label in a namespace Kueue does not manage, on a free MI300X node, from
   create to Running (the pod's own start on kwok).
2. Hub CPU per start (--starts rounds, 0 to skip): the hub as it ships (tests/cluster/hub.py) with the example's
   queue; CPU seconds (user+system of the hub process) from the REST start to the server ready, for, in turn:
   an unqueued start (cpu-small), a queued start admitted at once (a Strix Halo GPU free), and a queued start that
   waits in line until a running GPU server is stopped HOLD seconds later (its progress stream open, as a person's
   page would be). The hub's idle CPU rate, measured in the same run, says how much of the last is the wait itself.
The machine is shared: compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
for sub in ("hub-image", "tests"):
    sys.path.insert(0, str(ROOT / sub))

from cluster.access import Cluster  # noqa: E402
from cluster.chart import VALUES  # noqa: E402
from cluster.hub import ClusterHub, people_overlay  # noqa: E402
from cluster.kueue import Kueue  # noqa: E402
from cluster.test_queue import EXAMPLE, OVERLAY, render_queue  # noqa: E402
from shipped import shipped_venv  # noqa: E402

POLL = 0.02  # seconds between two looks at a pod
HOLD = 5.0  # seconds a queued start waits in line before a GPU is freed for it
IDLE = 10.0  # seconds the hub's idle CPU rate is measured over
GPU = {"resource": "pytorch", "accelerator": "strix-halo"}
CPU = {"resource": "cpu-small"}
PEOPLE = {"cpu1": ["cv-course"], "gpu1": ["cv-course"], "gpu2": ["cv-course"], "gpu3": ["cv-course"]}


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
                     "tolerations": [{"operator": "Exists"}],  # the course's MI300X nodes are tainted (course.py)
                     "containers": [{"name": "notebook", "image": "registry.example/notebook:1",
                                     "resources": {"limits": {"amd.com/gpu": "1"}}}]}}


def phase(cluster, ns: str, name: str) -> tuple:
    p = cluster.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    return p.get("status", {}).get("phase"), bool(p["spec"].get("schedulingGates"))


def until(check, timeout: float = 60, what: str = "a pod's state") -> float:
    """Poll `check` until true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not reached within {timeout} s (see the cluster's logs)")
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


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class Bench:
    """The shipped hub with the example's queue; a REST client per person, made before anything is measured."""

    def __init__(self, cluster, users: str, overlay: Path, state: Path):
        state.mkdir(parents=True)
        ns = cluster.new_namespace("bench-queue-hub")
        people = people_overlay(state / "people.yaml", PEOPLE, {"singleuser": {"namespace": users}})
        self.hub = ClusterHub(cluster, ns, shipped_venv(), state, overlays=(overlay, people), base=(EXAMPLE, VALUES[1]))
        self.hub.start()
        self.proc = psutil.Process(self.hub.proc.pid)
        self.apis = {p: self.hub.api(self.hub.token(self.hub.login(p, f"{p}-demo-pass"), f"local:{p}")) for p in PEOPLE}
        self.cluster, self.users = cluster, users

    def server(self, person: str) -> dict:
        return self.apis[person].get(f"/users/local:{person}").json().get("servers", {}).get("", {})

    def start(self, person: str, options: dict) -> None:
        r = self.apis[person].post(f"/users/local:{person}/server", json=options, timeout=60)
        if r.status_code not in (201, 202):
            raise SystemExit(f"start of {person}: {r.status_code} {r.text[:300]}")

    def ready(self, person: str) -> None:
        until(lambda: self.server(person).get("ready"), 120)

    def stop(self, person: str) -> None:
        r = self.apis[person].delete(f"/users/local:{person}/server", timeout=60)
        if r.status_code not in (202, 204):
            raise SystemExit(f"stop of {person}: {r.status_code} {r.text[:300]}")
        until(lambda: not self.server(person) and not self.pods(person), 120)

    def pods(self, person: str) -> list:
        items = self.cluster.api.get(f"/api/v1/namespaces/{self.users}/pods")["items"]
        return [p for p in items if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == f"local:{person}"]

    def measured(self, person: str, options: dict, meanwhile=None) -> float:
        """Hub CPU seconds from the start asked to the server ready; `meanwhile()` runs after the start was asked."""
        cpu0, self.asked = cpu_seconds(self.proc), time.monotonic()
        self.start(person, options)
        if meanwhile:
            meanwhile()
        self.ready(person)
        return cpu_seconds(self.proc) - cpu0

    def follow_progress(self, person: str) -> threading.Thread:
        """The progress stream open, as the person's progress page has it, until the start ends."""
        def read():
            with self.apis[person].stream("GET", f"/users/local:{person}/server/progress", timeout=120) as r:
                for line in r.iter_lines():
                    if '"ready": true' in line or '"failed": true' in line:
                        return
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def hub_cpu(cluster, kueue, users: str, overlay: Path, state: Path, rounds: int) -> None:
    bench = Bench(cluster, users, overlay, state)
    try:
        for person, options in (("cpu1", CPU), ("gpu1", GPU), ("gpu2", GPU), ("gpu3", GPU)):  # home PVCs made, warm
            bench.start(person, options)
            bench.ready(person)
            bench.stop(person)
        cpu0, began = cpu_seconds(bench.proc), time.monotonic()
        time.sleep(IDLE)
        idle = (cpu_seconds(bench.proc) - cpu0) / (time.monotonic() - began)
        unqueued, at_once, waited, waits = [], [], [], []
        for _ in range(rounds):
            unqueued.append(bench.measured("cpu1", CPU))
            bench.stop("cpu1")
            at_once.append(bench.measured("gpu1", GPU))
            bench.start("gpu2", GPU)
            bench.ready("gpu2")  # both GPUs held: gpu3 waits in line

            def hand_over(person="gpu3"):
                until(lambda: bench.pods(person) and bench.pods(person)[0]["spec"].get("schedulingGates"), 60)
                progress = bench.follow_progress(person)
                time.sleep(HOLD)
                bench.stop("gpu1")
                waits.append(time.monotonic() - bench.asked)  # the POST itself waits up to slow_spawn_timeout
                progress.join(0)

            waited.append(bench.measured("gpu3", GPU, hand_over))
            bench.stop("gpu2")
            bench.stop("gpu3")
        print(f"hub CPU seconds per start, median of {rounds} (hub idle: {idle * 1000:.1f} ms CPU per second):")
        print(f"  {'unqueued start (cpu-small)':52s} {statistics.median(unqueued):6.3f}")
        print(f"  {'queued start, admitted at once (GPU free)':52s} {statistics.median(at_once):6.3f}")
        label = f"queued start, in line ~{statistics.median(waits):.0f} s with its progress open"
        print(f"  {label:52s} {statistics.median(waited):6.3f}   (idle share of that time: {idle * (statistics.median(waits) + 1):.3f})")
        ratio = statistics.median(at_once) / statistics.median(unqueued)
        print(f"  queued (at once) / unqueued: {ratio:.2f}x")
    finally:
        bench.hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handovers", type=int, default=50)
    parser.add_argument("--starts", type=int, default=8, help="rounds of hub starts for the CPU figures (0: skip)")
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
                until(lambda name=name: running(cluster, users, name), 120, f"{name} Running")
            handovers, plain_starts = [], []
            for i in range(args.handovers):
                held, nxt = names[i], names[i + 2]
                cluster.api.create(path, pod(nxt, queued=True))
                until(lambda nxt=nxt: phase(cluster, users, nxt) == ("Pending", True), what=f"{nxt} gated in line")
                plain_starts.append(baseline(cluster, plain, i))
                freed = time.monotonic()
                cluster.api.delete(f"{path}/{held}?gracePeriodSeconds=0")
                handovers.append(until(lambda nxt=nxt: running(cluster, users, nxt)) - freed)
            print(f"{args.handovers} hand-overs (2 Strix Halo GPUs, one pod always waiting), seconds:")
            for label, xs in (("GPU freed -> next queued Running", handovers), ("baseline: plain pod create -> Running", plain_starts)):
                print(f"  {label:40s} median {statistics.median(xs):6.3f}   p95 {percentile(xs, 95):6.3f}")
            extra = statistics.median(handovers) - statistics.median(plain_starts)
            print(f"  the queue adds {extra:+.3f} s (median) to the pod's own start; target: within 2 s")
            for name in names:
                cluster.kubectl("delete", "pod", name, "-n", users, "--ignore-not-found", "--wait=false", "--grace-period=0")
            if args.starts:
                until(lambda: not cluster.api.get(f"{path}")["items"], 120)
                hub_cpu(cluster, kueue, users, overlay, Path(tmp) / "hub", args.starts)
        finally:
            problems = kueue.stop()
            leftover = cluster.stop()
            if problems or leftover:
                print(f"teardown: {problems} {leftover}", file=sys.stderr)


if __name__ == "__main__":
    main()
