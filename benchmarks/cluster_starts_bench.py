"""Server starts on the cluster tier's real control plane (a script, not a test):
`.venv/bin/python benchmarks/cluster_starts_bench.py [--burst N]`.

Two hubs on one cluster (tests/cluster: etcd, kube-apiserver, controller manager, scheduler, kwok nodes),
each in its own namespace with the chart's hub RBAC, acting as the chart's hub ServiceAccount:
- teamhub: ClusterHub from tests/cluster/hub.py (the shipped wheel environment, the chart's env and values);
- plain: JupyterHub + KubeSpawner with plain_kubespawner_config.py, making the same pod as teamhub's
  `cpu-small` launch.
User servers are the tier's test stand-in (tests/cluster/singleuser.py) on the pods' loopback IPs.

1. API writes per start, from the API server's audit log (requests by the hub's ServiceAccount):
   a person's first start (pod + home PVC), the stop, and the second start (servers run: the stand-in).
2. --burst N (default 300, 0 to skip): N people, spread over TEAMS teams (teamhub's quota is counted per
   team), start at once through the REST API; seconds until all N pods exist and until all are Running
   (kwok), the p99 latency of the hub's REST API meanwhile (a probe asking for one person every PROBE_EVERY
   s), hub CPU seconds (user+system of the hub process) per start, and API writes per start. No stand-in
   servers run during the burst (N Python processes would measure this machine, not the hubs): the window
   ends when every pod is Running. Both hubs get a concurrent_spawn_limit above N (see spawn_limit); a
   start answered 429 anyway is retried after its Retry-After and counted. Both sides alike: each person uses
   their own API token and is in one of TEAMS teams (JupyterHub groups; see team_members).

Goal (issue 15): teamhub's time and CPU <= 1.1x plain KubeSpawner's, p99 < 500 ms. Timings are on a
2-core machine shared with other work: compare the two hubs within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from cluster import course  # noqa: E402
from cluster.access import Cluster  # noqa: E402
from cluster.controlplane import ApiError  # noqa: E402
from cluster.hub import HUB_OBJECTS, ClusterHub, people_overlay, rendered  # noqa: E402
from cluster.singleuser import SingleUserServers  # noqa: E402
from hubprocess import CHP  # noqa: E402
from shipped import shipped_venv  # noqa: E402
from teamhub.cli.demo import free_port  # noqa: E402

RESOURCE = "cpu-small"
PLAIN_CONFIG = HERE / "plain_kubespawner_config.py"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
HUB_SA = "teamhub-hub"
# Room for the burst's pods (cpu-small requests 2 CPUs): kwok nodes like the course's CPU nodes.
BENCH_NODES = 4
BENCH_NODE_CAPACITY = {"cpu": "640", "memory": "2560Gi"}
TEAMS = 10
JUPYTERHUB_SPAWN_LIMIT = 100  # JupyterHub's default concurrent_spawn_limit (teamhub keeps it)
PROBE_EVERY = 0.1  # seconds between the latency probe's requests
GOAL_RATIO, GOAL_P99_MS = 1.1, 500


def spawn_limit(people: list[str]) -> int:
    """JupyterHub's concurrent_spawn_limit for both hubs (teamhub: sessions.concurrentStarts): its default
    (100) answers 429 to starts beyond 100 pending ones, and without stand-in servers no start of the burst
    stops pending before the window ends, so a larger burst could never be all Running. Raised alike on both
    sides."""
    return max(JUPYTERHUB_SPAWN_LIMIT, len(people) + 2)


class AuditWindow:
    """Requests the hub's ServiceAccount made in one namespace while the `with` block ran."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster, self.namespace = cluster, namespace
        self.user = f"system:serviceaccount:{namespace}:{HUB_SA}"

    def __enter__(self) -> AuditWindow:
        self.offset = self.cluster.audit_log.stat().st_size
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(1)  # the audit backend writes as requests complete; leave it a moment
        with open(self.cluster.audit_log) as f:
            f.seek(self.offset)
            events = [json.loads(line) for line in f if line.strip()]
        self.events = [e for e in events if e.get("stage") == "ResponseComplete" and e["user"]["username"] == self.user
                       and (e.get("objectRef") or {}).get("namespace", self.namespace) == self.namespace]

    def writes(self) -> Counter:
        return Counter(f"{e['verb']} {e['objectRef'].get('resource')}"
                       + (f"/{e['objectRef']['subresource']}" if e["objectRef"].get("subresource") else "")
                       + (" (dry run: stores nothing)" if "dryRun=" in e.get("requestURI", "") else "")
                       for e in self.events if e["verb"] in WRITES)

    def reads(self) -> int:
        return sum(1 for e in self.events if e["verb"] not in WRITES)


def team_members(people: list[str]) -> dict[str, list[str]]:
    """TEAMS teams, people spread over them round-robin: teamhub's catalog teams (JupyterHub groups through its
    login) and, on the plain side, the same JupyterHub groups, as an operator keeping teams without teamhub would
    (JupyterHub's database work per start grows with each person's groups, alike on both sides)."""
    return {f"bench-{t + 1:02d}": people[t::TEAMS] for t in range(TEAMS)}


class Side:
    """One hub under measurement: start(person) and stop(person) through the REST API."""

    name: str
    namespace: str
    proc: psutil.Process
    servers: SingleUserServers
    closed = False

    def api_for(self, person: str) -> httpx.Client:
        raise NotImplementedError

    def user(self, person: str) -> str:
        return person

    def start_server(self, person: str) -> int:
        """Returns how many times the hub answered 429 (too many starts pending) before it took the start."""
        refused = 0
        while True:
            r = self.api_for(person).post(f"/users/{self.user(person)}/server", json={"resource": RESOURCE}, timeout=120)
            if r.status_code != 429:
                break
            refused += 1
            time.sleep(float(r.headers.get("Retry-After", "5")))
        if r.status_code not in (201, 202):
            raise RuntimeError(f"{self.name}: start of {person}: {r.status_code} {r.text[:300]}")
        return refused

    def ready(self, person: str) -> bool:
        server = self.api_for(person).get(f"/users/{self.user(person)}").json().get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def stop_server(self, person: str) -> None:
        r = self.api_for(person).delete(f"/users/{self.user(person)}/server", timeout=120)
        if r.status_code not in (202, 204):
            raise RuntimeError(f"{self.name}: stop of {person}: {r.status_code} {r.text[:300]}")

    def stopped(self, person: str) -> bool:
        return not self.api_for(person).get(f"/users/{self.user(person)}").json().get("servers")


class TeamHub(Side):
    name = "teamhub"

    def __init__(self, cluster: Cluster, venv: Path, state: Path, people: list[str]):
        self.namespace = cluster.new_namespace("bench-teamhub")
        state.mkdir(parents=True, exist_ok=True)
        # TEAMS teams that each offer RESOURCE with a server quota, people spread over them round-robin.
        members = team_members(people)
        teams = {team: {"resources": [RESOURCE], "quota": {"maxServers": len(people) // TEAMS + 2}} for team in members}
        overlay = people_overlay(state / "overlay.yaml", {p: [team] for team, names in members.items() for p in names},
                                 {"catalog": {"teams": teams}, "sessions": {"concurrentStarts": spawn_limit(people)}})
        self.hub = ClusterHub(cluster, self.namespace, venv, state, overlays=(overlay,))
        self.hub.start()
        self.servers = self.hub.servers
        self.proc = psutil.Process(self.hub.proc.pid)
        self.clients: dict[str, httpx.Client] = {}

    def user(self, person: str) -> str:
        return f"local:{person}"

    def api_for(self, person: str) -> httpx.Client:
        if person not in self.clients:  # a login and a token per person, before anything is measured
            client = self.hub.login(person, f"{person}-demo-pass")
            self.clients[person] = self.hub.api(self.hub.token(client, self.user(person)))
        return self.clients[person]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.stop()


class PlainKubeSpawner(Side):
    name = "plain KubeSpawner"

    def __init__(self, cluster: Cluster, venv_python: str, state: Path, people: list[str]):
        self.namespace = cluster.new_namespace("bench-plain")
        # The same ServiceAccount, Role and binding as teamhub's hub (the chart's), so both act alike.
        objects = [o for o in rendered(cluster, self.namespace, (), HUB_OBJECTS) if o["kind"] != "Secret"]
        cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump_all(objects))
        token, port, hub_port = secrets.token_hex(16), free_port(), free_port()
        state.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BENCH_STATE": str(state), "BENCH_PORT": str(port), "BENCH_HUB_PORT": str(hub_port),
               "BENCH_PROXY_API_PORT": str(free_port()), "BENCH_CHP": str(CHP), "BENCH_TOKEN": token,
               "BENCH_NAMESPACE": self.namespace, "BENCH_RESOURCE": RESOURCE, "BENCH_SPAWN_LIMIT": str(spawn_limit(people)),
               "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
               "KUBECONFIG": str(cluster.service_account_kubeconfig(self.namespace, HUB_SA))}
        log = open(state / "hub.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen([venv_python, "-m", "jupyterhub", "-f", str(PLAIN_CONFIG)], env=env,
                                        cwd=state, stdout=log, stderr=log, start_new_session=True)
        self.proc = psutil.Process(self.process.pid)
        self.servers = SingleUserServers(cluster.api, self.namespace, f"http://127.0.0.1:{hub_port}/hub/api", state / "servers")
        self.servers.start()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}/hub/api", headers={"Authorization": f"token {token}"},
                                   timeout=30)
        wait(lambda: _answers(self.client), 90, f"the plain hub (log {state / 'hub.log'})", self.process)
        self.client.post("/users", json={"usernames": people}).raise_for_status()
        for team, names in team_members(people).items():
            self.client.post(f"/groups/{team}").raise_for_status()
            self.client.post(f"/groups/{team}/users", json={"users": names}).raise_for_status()
        self.clients: dict[str, httpx.Client] = {}

    def api_for(self, person: str) -> httpx.Client:
        if person not in self.clients:  # the person's own token and client, as on teamhub's side
            r = self.client.post(f"/users/{person}/tokens", json={"note": "bench"})
            r.raise_for_status()
            self.clients[person] = httpx.Client(base_url=self.client.base_url, headers={"Authorization": f"token {r.json()['token']}"},
                                                timeout=30)
        return self.clients[person]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        children = self.proc.children(recursive=True)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for child in children:
            if child.is_running():
                child.terminate()
        psutil.wait_procs(children, timeout=10)
        self.servers.stop()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/").status_code == 200
    except httpx.HTTPError:
        return False


def wait(predicate, timeout: float, what: str, process=None, poll: float = 0.2) -> float:
    began = time.monotonic()
    while not predicate():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: exited with {process.returncode}")
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(poll)
    return time.monotonic() - began


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def pods_left(cluster: Cluster, namespace: str) -> int:
    return len(cluster.api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=singleuser-server")["items"])


def fmt(counter: Counter) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items())) or "none"


def writes_per_start(cluster: Cluster, side: Side, person: str) -> dict:
    side.api_for(person)  # log in / create the user outside the window
    rows = {}
    for phase in ("first start", "stop", "second start"):
        cluster.top_up_volumes()
        with AuditWindow(cluster, side.namespace) as window:
            if phase == "stop":
                side.stop_server(person)
                wait(lambda: side.stopped(person) and pods_left(cluster, side.namespace) == 0, 120, f"{person} stopped")
            else:
                side.start_server(person)
                wait(lambda: side.ready(person), 180, f"{person} ready")
        rows[phase] = (window.writes(), window.reads())
    side.stop_server(person)
    wait(lambda: side.stopped(person) and pods_left(cluster, side.namespace) == 0, 120, f"{person} stopped")
    return rows


def pod_phases(cluster: Cluster, namespace: str) -> tuple[int, int]:
    """(user pods that exist, of them Running)."""
    items = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=singleuser-server")["items"]
    return len(items), sum(1 for p in items if p["status"].get("phase") == "Running")


class Probe(threading.Thread):
    """Asks the hub's REST API about one person every PROBE_EVERY s and keeps each answer's latency."""

    def __init__(self, side: Side, person: str):
        super().__init__(daemon=True)
        self.side, self.person, self.latencies, self.failures = side, person, [], 0
        self.done = threading.Event()

    def run(self) -> None:
        client = self.side.api_for(self.person)
        while not self.done.is_set():
            began = time.monotonic()
            try:
                ok = client.get(f"/users/{self.side.user(self.person)}").status_code == 200
            except httpx.HTTPError:
                ok = False
            self.latencies.append(time.monotonic() - began)
            self.failures += not ok
            self.done.wait(PROBE_EVERY)

    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000 if len(self.latencies) > 1 else float("nan")


def burst(cluster: Cluster, side: Side, people: list[str], probe_person: str) -> dict:
    """N starts at once; measured until every pod is Running. The side's hub is closed afterwards by main."""
    for p in [*people, probe_person]:
        side.api_for(p)  # logins and tokens before the window
    side.servers.stop()  # no stand-in servers: see the module docstring
    cluster.top_up_volumes(len(people) + 4)
    n = len(people)
    refused: list[int] = []
    probe = Probe(side, probe_person)
    with AuditWindow(cluster, side.namespace) as window:
        probe.start()
        cpu0, began = cpu_seconds(side.proc), time.monotonic()
        threads = [threading.Thread(target=lambda p=p: refused.append(side.start_server(p)), daemon=True) for p in people]
        for t in threads:
            t.start()
        created = None

        def all_running() -> bool:
            nonlocal created
            exist, running = pod_phases(cluster, side.namespace)
            if created is None and exist >= n:
                created = time.monotonic() - began
            return running >= n

        wait(all_running, 900, f"{side.name}: all {n} pods Running", poll=0.5)
        running = time.monotonic() - began
        cpu = cpu_seconds(side.proc) - cpu0
        probe.done.set()
        probe.join(10)
        for t in threads:  # each POST answers by the hub's slow_spawn_timeout (202); the hub is closed after
            t.join(120)
    writes = window.writes()
    return {"created": created, "running": running, "cpu": cpu / n, "p99": probe.p99_ms(), "probes": len(probe.latencies),
            "probe_failures": probe.failures, "refused": sum(refused), "writes": sum(writes.values()) / n, "detail": writes}


def add_bench_nodes(cluster: Cluster) -> None:
    names = []
    for i in range(1, BENCH_NODES + 1):
        node = course._node(f"bench-cpu-{i}", course.CPU_NODE_LABELS, BENCH_NODE_CAPACITY, [])
        cluster.api.create("/api/v1/nodes", node)
        names.append(node["metadata"]["name"])
    cluster.plane.wait_until(lambda: cluster.ready_nodes() >= set(names), 60, "the benchmark's nodes")
    for name in names:
        cluster.give_address(name)


def namespace_gone(cluster: Cluster, namespace: str) -> bool:
    try:
        cluster.api.get(f"/api/v1/namespaces/{namespace}")
    except ApiError as exc:
        return exc.status == 404
    return False


def report(results: dict) -> None:
    print(f"  {'hub':18} {'all created s':>13} {'all Running s':>13} {'p99 API ms':>10} {'hub CPU s/start':>15} "
          f"{'writes/start':>12} {'429s':>5}")
    for name, r in results.items():
        print(f"  {name:18} {r['created']:13.1f} {r['running']:13.1f} {r['p99']:10.0f} {r['cpu']:15.3f} {r['writes']:12.2f} "
              f"{r['refused']:5d}   ({fmt(r['detail'])}; {r['probes']} probes, {r['probe_failures']} failed)")
    ours, theirs = results.get("teamhub"), results.get(PlainKubeSpawner.name)
    if ours and theirs:
        time_ratio, cpu_ratio = ours["running"] / theirs["running"], ours["cpu"] / theirs["cpu"]
        met = time_ratio <= GOAL_RATIO and cpu_ratio <= GOAL_RATIO and ours["p99"] < GOAL_P99_MS
        print(f"  teamhub / plain: time {time_ratio:.2f}x, CPU {cpu_ratio:.2f}x; teamhub p99 {ours['p99']:.0f} ms "
              f"(goal <= {GOAL_RATIO}x, < {GOAL_P99_MS} ms: {'met' if met else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=300, help="simultaneous starts per hub (0: skip)")
    parser.add_argument("--hubs", default="teamhub,plain", help="which hubs to measure (teamhub, plain or both)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs, audit log) and print it")
    args = parser.parse_args()
    people = [f"p{i:03d}" for i in range(1, args.burst + 1)]
    venv = shipped_venv()
    tmp = Path(tempfile.mkdtemp(prefix="cluster-starts-bench-"))
    if args.keep:
        print(f"state: {tmp}")
    try:
        cluster = Cluster.start(tmp / "cluster")
        sides: list[Side] = []
        try:
            add_bench_nodes(cluster)
            if "teamhub" in args.hubs:
                sides.append(TeamHub(cluster, venv, tmp / "teamhub", ["solo", *people]))
            if "plain" in args.hubs:
                sides.append(PlainKubeSpawner(cluster, sys.executable, tmp / "plain", ["solo", *people]))
            print(f"API writes by the hub's ServiceAccount (audit log), one person, {RESOURCE}:")
            for side in sides:
                for phase, (writes, reads) in writes_per_start(cluster, side, "solo").items():
                    print(f"  {side.name:18} {phase:13} writes: {fmt(writes)}  (reads: {reads})")
            if people:
                results = {}
                for side in sides:  # one burst at a time; the other hub idles, the finished one is gone
                    results[side.name] = burst(cluster, side, people, "solo")
                    side.close()
                    cluster.delete_namespace(side.namespace)
                    wait(lambda side=side: namespace_gone(cluster, side.namespace), 600, f"namespace {side.namespace} deleted", poll=1)
                print(f"\n{len(people)} simultaneous starts ({RESOURCE}, REST API, {TEAMS} teams, concurrent_spawn_limit "
                      f"{spawn_limit(people)}), until every pod is Running:")
                report(results)
        finally:
            for side in sides:
                side.close()
            leftover = cluster.stop()
            if leftover:
                print(f"still running after stop: {leftover}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
