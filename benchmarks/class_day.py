"""A course's day replayed on the cluster tier's real control plane (a script, not a test):
`.venv/bin/python benchmarks/class_day.py [--quick] [--policies today,queue,queue-cull]`.

The day (benchmarks/classday_model.py, fixed seed: the same people for every policy): 60 students, 8 GPUs of one
kind (a kwok node of its own), 4 simulated hours before a deadline, arrivals peaking ~60 min before it, each
computing 10-150 min (median 25) once the notebook runs, 40 % of them leaving the notebook open with the GPU idle for 1-3 h.
The clock is compressed: one simulated minute is `--scale` real seconds (0.6 by default), and every duration the
hub judges (GPU idle window, warning) is given in real minutes at that scale. The hub runs with the test clock
file (TEAMHUB_TEST_CLOCK_FILE, offset 0), so it checks sessions and the culler runs every second instead of
every minute, as tests/cluster does.

Each person is a thread that drives the real hub's REST API with their own token (as tests/cluster does):
POST /users/<name>/server at arrival, then waits for the notebook to be ready; the GPU exporter reports their
pod busy (90 %) while they compute and idle (0 %) afterwards; DELETE when they close it. The figures come from
what the hub did (ready, gone), seen by one poller of the admin's GET /users.

Policies (one hub each, in turn, on the same cluster):
- today: no queue. A start when all GPUs are taken fails fast with the hub's sentence; the person retries every
  5 simulated minutes and gives up after 90 without a notebook.
- queue: Kueue (tests/cluster/kueue.py, the chart's queue objects): the start waits in the team's line until a
  GPU frees up; the person gives up (Stop) after the same 90 minutes.
- queue-cull: the queue and the GPU-aware culler (catalog `idle`, gpuMetrics): a real Prometheus scrapes the
  test exporter that serves the utilisation this replay sets; a GPU idle for 30 simulated minutes is stopped.

Printed per policy: starts turned away, people never served, median and p95 wait from arrival to a running
notebook (simulated minutes), GPU-hours held by computing notebooks and by idle ones, the share of the day's
GPU capacity that went to computing (and that was held at all), servers culled. Beside them, an uncontended
start's latency measured in the same run (it is part of every wait) and an oracle's figures for the same
people (no overhead, a GPU goes back the moment its owner stops computing).

Not measured here: a shared-GPU kind (DRA with shared capacity, issue 27). Kueue counts a DRA claim only with its
alpha gates DynamicResourceAllocation and DRAExtendedResources, which the tier's Kueue does not run, and the
tier has no DRA path through the hub yet; see the closing note of issue 28.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import classday_model as model  # noqa: E402
from classday_model import ARRIVE, CULLED, DAY_END, END, GAVE_UP, IDLE, READY, REFUSED, STOPPED, Day, Event, Person  # noqa: E402
from cluster import course  # noqa: E402
from cluster import hub as cluster_hub  # noqa: E402
from cluster.access import Cluster  # noqa: E402
from cluster.chart import CHART, RELEASE  # noqa: E402
from cluster.chart import VALUES as TIER_VALUES  # noqa: E402
from cluster.hub import ClusterHub, people_overlay  # noqa: E402
from shipped import shipped_venv  # noqa: E402

KIND = "class-gpu"  # the day's accelerator kind, on a kwok node of its own
NODE_LABELS = {"node-type": "classday-gpu"}
RESOURCE = "class-gpu"
TEAM = "course"
OTHER_RESOURCES = ("course-cv", "course-nlp", "research-gpu", "cpu-large")  # config/values.yaml's
OTHER_TEAMS = ("cv-course", "nlp-course", "staff")
LAUNCH = {"resource": RESOURCE, "accelerator": KIND}
KUEUE_API = "kueue.x-k8s.io/v1beta2"
QUEUE_NAMESPACE = "classday-queue"  # Kueue manages it; the queued hubs (one after the other) and their servers live there
POLICIES = ("today", "queue", "queue-cull")
BUSY, IDLE_PERCENT = 90.0, 0.0
IDLE_WINDOW, IDLE_WARN = 30.0, 5.0  # simulated minutes: the GPU rule of queue-cull
POLL = 0.2  # real seconds between two looks at the hub's servers


@dataclass(frozen=True)
class Run:
    day: Day
    scale: float  # real seconds per simulated minute

    def real(self, minutes: float) -> float:
        return minutes * self.scale


QUICK = Day(students=16, gpus=4, minutes=120.0, peak_before_deadline=40.0, work_median=25.0, idle_minutes=(30.0, 90.0),
            patience=60.0)


# --- the cluster ---------------------------------------------------------------------------------------------
def add_gpu_node(cluster: Cluster, gpus: int) -> None:
    """One kwok node with the day's GPUs (room for CPU and memory to spare)."""
    node = course._node("classday-gpu-1", NODE_LABELS, {"cpu": "256", "memory": "2Ti", "amd.com/gpu": str(gpus)}, [])
    cluster.api.create("/api/v1/nodes", node)
    cluster.plane.wait_until(lambda: "classday-gpu-1" in cluster.ready_nodes(), 60, "the day's GPU node")
    cluster.give_address("classday-gpu-1")


def values(run: Run, policy: str, namespace: str, prometheus: str | None) -> dict:
    """The overlay of one policy's hub: the day's kind, resource and team on top of the tier's values."""
    kind = {"displayName": "Course GPU", "gpu": {"resource": "amd.com/gpu", "count": 1}, "nodeSelector": NODE_LABELS,
            "capacity": run.day.gpus}
    team = {"resources": [RESOURCE]}
    out = {
        "catalog": {
            "accelerators": {KIND: kind},
            "resources": {RESOURCE: {"displayName": "Course notebook on a GPU", "image": "pytorch-rocm",
                                     "cpu": {"request": 2}, "memory": {"request": "8Gi"}, "accelerators": [KIND]}},
            "teams": {TEAM: team},
        },
        # The open tab keeps a notebook "active" for JupyterHub: today's activity rule never stops it, so it is off.
        "sessions": {"idleCullMinutes": 0, "defaultMinutes": 480, "maxMinutes": 480},
        "singleuser": {"storage": {"type": "none"}},
    }
    if policy != "today":
        out["queue"] = {"enabled": True, "queueingStrategy": "BestEffortFIFO",
                        "maxWaitMinutes": max(1, int(run.real(run.day.minutes) / 60) + 2)}  # never before the person gives up
        out["singleuser"]["namespace"] = namespace
        team["queue"] = {"accelerators": {KIND: {"guaranteed": run.day.gpus, "max": run.day.gpus}}}
        for other, pool in (("strix-halo", 2), ("mi300x", 8), ("nvidia-l40s", 1)):  # the queue needs every pool's size
            out["catalog"]["accelerators"][other] = {"capacity": pool}
    if policy == "queue-cull":
        kind["idle"] = {"exporter": "amd", "belowPercent": 10, "minutes": round(run.real(IDLE_WINDOW) / 60, 4),
                        "warnMinutes": round(run.real(IDLE_WARN) / 60, 4)}
        out["gpuMetrics"] = {"prometheusUrl": prometheus, "timeoutSeconds": 2}
    return out


def base_values(path: Path) -> Path:
    """config/values.yaml without its other GPU resources and teams: they would only be in the way (with the queue on
    a fixed `gpu` or a quota.maxGpus is refused), and no overlay can remove them (helm merges files key by key)."""
    values = yaml.safe_load(TIER_VALUES[0].read_text())
    for key in OTHER_RESOURCES:
        values["catalog"]["resources"].pop(key, None)
    for key in OTHER_TEAMS:
        values["catalog"]["teams"].pop(key, None)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


@contextlib.contextmanager
def tier_values(base: Path):
    """ClusterHub renders the chart with the tier's values files (cluster.hub's VALUES) under its overlays: here
    with `base` in place of config/values.yaml."""
    saved = cluster_hub.VALUES
    cluster_hub.VALUES = (base, *TIER_VALUES[1:])
    try:
        yield
    finally:
        cluster_hub.VALUES = saved


def apply_queue_objects(cluster: Cluster, base: Path, overlay: Path) -> list[dict]:
    """The chart's Kueue objects for these values (ResourceFlavor, Cohort, ClusterQueue, LocalQueue), applied."""
    rendered = cluster.helm("helm3", "template", RELEASE, CHART, "-n", QUEUE_NAMESPACE, "-f", base, "-f", overlay, "--api-versions", KUEUE_API, "--show-only", "templates/queue/kueue.yaml").stdout
    cluster.kubectl("apply", "-f", "-", input=rendered)
    return [d for d in yaml.safe_load_all(rendered) if d]


def queues_active(cluster: Cluster, objects: list[dict]) -> bool:
    for obj in objects:
        if obj["kind"] not in ("ClusterQueue", "LocalQueue"):
            continue
        ns = obj["metadata"].get("namespace")
        path = f"/apis/{KUEUE_API}/" + (f"namespaces/{ns}/" if ns else "") + f"{obj['kind'].lower()}s/{obj['metadata']['name']}"
        conditions = cluster.api.get(path).get("status", {}).get("conditions") or []
        if not any(c["type"] == "Active" and c["status"] == "True" for c in conditions):
            return False
    return True


def user_pods(cluster: Cluster, namespace: str) -> list[dict]:
    return cluster.api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=singleuser-server")["items"]


# --- the day ---------------------------------------------------------------------------------------------------
class Servers(threading.Thread):
    """Every person's default server as the hub reports it (the admin's GET /users?state=active), every POLL s:
    `seen[name]` is "ready", "pending" or absent; `ready_at[name]` the simulated minute it was first seen ready."""

    def __init__(self, admin: httpx.Client, clock):
        super().__init__(daemon=True)
        self.admin, self.clock = admin, clock
        self.seen: dict[str, str] = {}
        self.ready_at: dict[str, float] = {}
        self.generation = 0
        self.changed = threading.Condition()
        self.done = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                users = self.admin.get("/users", params={"state": "active"}).json()
            except (httpx.HTTPError, ValueError):
                self.errors += 1
                self.done.wait(POLL)
                continue
            at = self.clock()
            seen = {}
            for user in users:
                server = (user.get("servers") or {}).get("")
                if server:
                    seen[user["name"]] = "ready" if server.get("ready") else "pending"
            with self.changed:
                for name, state in seen.items():
                    if state == "ready":
                        self.ready_at.setdefault(name, at)
                for name in list(self.ready_at):
                    if seen.get(name) != "ready":
                        del self.ready_at[name]
                self.seen = seen
                self.generation += 1
                self.changed.notify_all()
            self.done.wait(POLL)

    def after(self, generation: int, timeout: float) -> int:
        """Wait for a look taken after `generation`; returns the newest generation."""
        with self.changed:
            self.changed.wait_for(lambda: self.generation > generation or self.done.is_set(), timeout)
            return self.generation


class Replay:
    """One policy's day on one hub."""

    def __init__(self, run: Run, hub: ClusterHub, namespace: str, tokens: dict, admin: httpx.Client, exporter=None):
        self.run, self.day = run, run.day
        self.hub, self.namespace, self.exporter = hub, namespace, exporter
        self.clients = {name: hub.api(token) for name, token in tokens.items()}
        self.admin = admin
        self.events: list[Event] = []
        self.refusals: list[str] = []
        self.lock = threading.Lock()
        self.began = 0.0
        self.servers: Servers | None = None
        self.failures: list[str] = []

    def now(self) -> float:
        return (time.monotonic() - self.began) / self.run.scale

    def sleep_until(self, minute: float) -> None:
        delay = self.run.real(minute - self.now())
        if delay > 0:
            time.sleep(delay)

    def record(self, person: Person, kind: str, at: float | None = None, reason: str = "") -> None:
        with self.lock:
            self.events.append(Event(person.name, kind, self.now() if at is None else at, reason))

    def user(self, person: Person) -> str:
        return f"local:{person.name}"

    # --- one person ------------------------------------------------------------------------------------------
    def live(self, person: Person) -> None:
        try:
            self._live(person)
        except Exception as exc:  # reported after the day; the others go on
            self.failures.append(f"{person.name}: {exc!r}")

    def _live(self, p: Person) -> None:
        self.sleep_until(p.arrive)
        self.record(p, ARRIVE)
        give_up = min(p.arrive + self.day.patience, self.day.minutes)
        while True:
            outcome = self.start(p, give_up)
            if outcome == READY:
                break
            if outcome == REFUSED:
                self.record(p, REFUSED)
                retry = self.now() + self.day.retry
                if retry >= give_up:
                    self.sleep_until(give_up)
                    self.record(p, END, reason=GAVE_UP)
                    return
                self.sleep_until(retry)
                continue
            self.stop(p)  # still waiting in line: the person leaves it
            self.record(p, END, reason=GAVE_UP)
            return
        ready = self.servers.ready_at.get(self.user(p), self.now())
        self.record(p, READY, at=ready)
        pod = self.pod_of(p)
        self.gpu(pod, BUSY)
        busy_until = ready + p.work
        if self.hold(p, min(busy_until, self.day.minutes)):
            self.record(p, END, reason=CULLED)
            self.gpu(pod, None)
            return
        if busy_until >= self.day.minutes:
            return  # the deadline: ended by the day
        self.record(p, IDLE)
        self.gpu(pod, IDLE_PERCENT)
        if self.hold(p, min(busy_until + p.idle_after, self.day.minutes)):
            self.record(p, END, reason=CULLED)
        elif busy_until + p.idle_after < self.day.minutes:
            self.stop(p)
            self.record(p, END, reason=STOPPED)
        self.gpu(pod, None)

    def start(self, p: Person, give_up: float) -> str:
        """READY, REFUSED (the hub said no, at once or when the start failed) or GAVE_UP (still waiting)."""
        client, name = self.clients[p.name], self.user(p)
        while True:
            r = client.post(f"/users/{name}/server", json=LAUNCH, timeout=120)
            if r.status_code == 429:  # the hub's start throttle: not a GPU refusal
                time.sleep(float(r.headers.get("Retry-After", "2")))
            elif r.status_code == 400 and "pending" in r.text:  # the last failed start still being cleaned up
                time.sleep(0.5)
            else:
                break
        if r.status_code not in (201, 202):
            self.refused(r.text)
            return REFUSED
        # a look that began after the POST was answered (the one under way may have begun before)
        generation = self.servers.after(self.servers.generation, 5)
        while True:
            generation = self.servers.after(generation, 5)
            state = self.servers.seen.get(name)
            if state == "ready":
                return READY
            if state is None:
                self.refused("the start failed after it was accepted (see the hub's log)")
                return REFUSED
            if self.now() >= give_up:
                return GAVE_UP

    def refused(self, text: str) -> None:
        with self.lock:
            if len(self.refusals) < 3:
                self.refusals.append(text.strip()[:300])

    def hold(self, p: Person, until: float) -> bool:
        """Keep the notebook until the simulated minute `until`; True when it went away before (culled)."""
        name = self.user(p)
        generation = self.servers.generation
        while self.now() < until:
            generation = self.servers.after(generation, max(0.05, min(5, self.run.real(until - self.now()))))
            if self.servers.seen.get(name) is None and self.now() < until:
                return True
        return False

    def stop(self, p: Person) -> None:
        r = self.clients[p.name].delete(f"/users/{self.user(p)}/server", timeout=120)
        if r.status_code not in (202, 204, 400, 404):
            raise RuntimeError(f"stop: {r.status_code} {r.text[:200]}")

    def pod_of(self, p: Person) -> str | None:
        if self.exporter is None:
            return None
        for pod in user_pods(self.hub.cluster, self.namespace):
            if pod["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == self.user(p):
                return pod["metadata"]["name"]
        return None

    def gpu(self, pod: str | None, percent: float | None) -> None:
        if self.exporter is not None and pod:
            self.exporter.set(self.namespace, pod, percent)

    # --- the whole day -----------------------------------------------------------------------------------------
    def play(self, people: list[Person]) -> list[Event]:
        self.began = time.monotonic()
        self.servers = Servers(self.admin, self.now)
        self.servers.start()
        threads = [threading.Thread(target=self.live, args=(p,), daemon=True) for p in people]
        for t in threads:
            t.start()
        self.sleep_until(self.day.minutes)
        end = self.day.minutes
        for t in threads:
            t.join(self.run.real(self.day.patience) + 120)
        self.servers.done.set()
        self.servers.join(10)
        with self.lock:
            done = {e.person for e in self.events if e.kind == END}
            for name in {e.person for e in self.events if e.kind == READY} - done:
                self.events.append(Event(name, END, end, DAY_END))
        return self.events


# --- one policy, from hub start to cleanup ---------------------------------------------------------------------
def probe_start(hub: ClusterHub, client: httpx.Client, name: str) -> float:
    """An uncontended start (the warm-up): real seconds from POST to ready."""
    began = time.monotonic()
    r = client.post(f"/users/{name}/server", json=LAUNCH, timeout=120)
    if r.status_code not in (201, 202):
        raise RuntimeError(f"the probe start: {r.status_code} {r.text[:300]}")
    hub.wait_ready(client, name, timeout=120)
    took = time.monotonic() - began
    client.delete(f"/users/{name}/server", timeout=120)
    hub.cluster.plane.wait_until(lambda: not client.get(f"/users/{name}").json().get("servers")
                                 and not user_pods(hub.cluster, hub.namespace), 120, "the probe's server gone")
    return took


def play_policy(cluster: Cluster, run: Run, policy: str, state: Path, venv: Path, prometheus: str | None,
                exporter) -> tuple[model.Figures, float, list[str]]:
    people = model.people(run.day)
    namespace = QUEUE_NAMESPACE if policy != "today" else cluster.new_namespace(f"classday-{policy}")
    state.mkdir(parents=True, exist_ok=True)
    extra = state / "day.yaml"
    extra.write_text(yaml.safe_dump(values(run, policy, namespace, prometheus)))
    accounts = {p.name: [TEAM] for p in people} | {"probe": [TEAM], "admin": [TEAM]}
    overlay = people_overlay(state / "people.yaml", accounts, yaml.safe_load(extra.read_text()), admins=("admin",))
    base = base_values(state / "base.yaml")
    if policy != "today":
        objects = apply_queue_objects(cluster, base, overlay)
        cluster.plane.wait_until(lambda: queues_active(cluster, objects), 90, "the day's queues Active")
    clock = state / "clock"
    clock.write_text("0")
    with tier_values(base):
        hub = ClusterHub(cluster, namespace, venv, state, overlays=(overlay,), extra_env={"TEAMHUB_TEST_CLOCK_FILE": str(clock)})
    hub.start(timeout=180)
    try:
        def token(name: str) -> str:
            return hub.token(hub.login(name, f"{name}-demo-pass"), f"local:{name}")

        tokens = {p.name: token(p.name) for p in people}
        admin = hub.api(token("admin"))
        baseline = probe_start(hub, hub.api(token("probe")), "local:probe")
        replay = Replay(run, hub, namespace, tokens, admin, exporter if policy == "queue-cull" else None)
        events = replay.play(people)
        if replay.failures:
            print(f"  {policy}: {len(replay.failures)} replay errors, e.g. {replay.failures[:3]}", file=sys.stderr)
        figures = model.figures(events, run.day)
        return figures, baseline, replay.refusals
    finally:
        with contextlib.suppress(Exception):
            stop_everyone(hub, people)
        hub.stop()
        cluster.kubectl("delete", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=singleuser-server",
                        "--wait=false", check=False)
        cluster.plane.wait_until(lambda: not user_pods(cluster, namespace), 120, f"{policy}: every user pod gone")
        if exporter is not None:
            exporter.clear()
        if policy == "today":
            cluster.delete_namespace(namespace)


def stop_everyone(hub: ClusterHub, people: list[Person]) -> None:
    admin_token = hub.token(hub.login("admin", "admin-demo-pass"), "local:admin")
    admin = hub.api(admin_token)
    for p in people:
        admin.delete(f"/users/local:{p.name}/server", timeout=120)


# --- main -------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 16 students, 4 GPUs, 120 simulated minutes")
    parser.add_argument("--scale", type=float, default=None, help="real seconds per simulated minute (default 0.6; quick 0.25)")
    parser.add_argument("--seed", type=int, default=Day.seed)
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"which of {', '.join(POLICIES)}")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (hub logs) and print it")
    args = parser.parse_args()
    day = replace(QUICK if args.quick else Day(), seed=args.seed)
    run = Run(day, args.scale or (0.25 if args.quick else 0.6))
    policies = [p for p in args.policies.split(",") if p]
    unknown = set(policies) - set(POLICIES)
    if unknown:
        parser.error(f"unknown policies: {', '.join(sorted(unknown))}")
    venv = shipped_venv()
    tmp = Path(tempfile.mkdtemp(prefix="class-day-"))
    if args.keep:
        print(f"state: {tmp}")
    print(f"The day: {day.students} students, {day.gpus} GPUs, {day.minutes:g} simulated minutes (1 min = {run.scale:g} s), "
          f"seed {day.seed}")
    rows, notes = [], []
    try:
        cluster = Cluster.start(tmp / "cluster")
        kueue = prometheus = exporter = None
        try:
            add_gpu_node(cluster, day.gpus)
            if any(p != "today" for p in policies):
                kueue = start_kueue(cluster, tmp / "kueue")
            if "queue-cull" in policies:
                gpu_metrics = start_gpu_metrics(tmp / "prometheus")
                if gpu_metrics is None:
                    notes.append("queue-cull: not yet measured (no Prometheus build or test exporter on this tree)")
                    policies.remove("queue-cull")
                else:
                    prometheus, exporter = gpu_metrics
            for policy in policies:
                try:
                    figures, baseline, refusals = play_policy(cluster, run, policy, tmp / policy, venv,
                                                              prometheus and prometheus.url, exporter)
                except Exception as exc:  # the other policies' figures still count; this one is reported
                    notes.append(f"{policy}: not measured, the replay failed: {exc!r}"[:2000])
                    print(notes[-1], file=sys.stderr, flush=True)
                    continue
                rows.append(model.row(policy, figures))
                notes.append(f"{policy}: an uncontended start took {baseline:.1f} s = {baseline / run.scale:.0f} simulated "
                             "min (in every wait)" + (f"; the hub's refusal: {refusals[0]!r}" if refusals else ""))
                print(model.table(rows[-1:]).splitlines()[-1], flush=True)
        finally:
            if prometheus is not None:
                prometheus.stop()
            if exporter is not None:
                exporter.stop()
            if kueue is not None:
                kueue.stop()
            leftover = cluster.stop()
            if leftover:
                print(f"still running after stop: {leftover}", file=sys.stderr)
        rows.append(model.row("oracle (same people)", model.ideal(day)))
        print()
        print(model.table(rows))
        for note in notes:
            print(f"- {note}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def start_kueue(cluster: Cluster, directory: Path):
    from cluster.kueue import Kueue

    cluster.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": QUEUE_NAMESPACE}})
    cluster.plane.wait_until(lambda: cluster.api.ok(f"/api/v1/namespaces/{QUEUE_NAMESPACE}/serviceaccounts/default"), 30,
                             QUEUE_NAMESPACE)
    kueue = Kueue(cluster, directory, QUEUE_NAMESPACE)
    kueue.start()
    return kueue


class GpuUse:
    """What the replay tells the GPU exporter (tests/cluster/gpuexporter.py, AMD's series: the day's kind is an
    amd.com/gpu): a pod's utilisation, or None when its series end."""

    def __init__(self, exporter):
        self.exporter = exporter
        self.pods: set = set()
        self.lock = threading.Lock()

    def set(self, namespace: str, pod: str, percent: float | None) -> None:
        with self.lock:
            if percent is None:
                self.exporter.forget(namespace, pod)
                self.pods.discard((namespace, pod))
            else:
                self.exporter.amd(namespace, pod, percent)
                self.pods.add((namespace, pod))

    def clear(self) -> None:
        for namespace, pod in list(self.pods):
            self.set(namespace, pod, None)

    def stop(self) -> None:
        self.exporter.stop()


def start_gpu_metrics(directory: Path):
    """(Prometheus, GpuUse) scraping the test exporter every second, or None when this tree has no Prometheus build
    or no test exporter yet (scripts/setup.sh, tests/cluster/gpuexporter.py: issue 28's tests)."""
    try:
        from cluster.gpuexporter import GpuExporter, Prometheus, prometheus_binary

        prometheus_binary()
    except (ImportError, FileNotFoundError) as exc:
        print(f"queue-cull left out: {exc}", file=sys.stderr)
        return None
    exporter = GpuExporter().start()
    try:
        return Prometheus(directory, [exporter.target]).start(), GpuUse(exporter)
    except BaseException:
        exporter.stop()
        raise


if __name__ == "__main__":
    main()
