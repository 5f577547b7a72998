"""GPU-aware culling (issue 28) through the hub as it ships and its real idle culler, with a real Prometheus
(built by scripts/setup.sh) scraping the test's exporter (gpuexporter.py): dcgm-exporter-shaped series for an
NVIDIA kind of this module's own, AMD device-metrics-exporter-shaped ones for the course's MI300X.

Windows are made small through values alone: `idle.minutes` 0.5 (30 s, warned for the last 15 s) and
`sessions.idleCullMinutes` 1 (today's rule); the test clock file makes the culler and the hub's GPU watch
look every second. No test waits for time to pass: each waits for a state (a pod gone, a page's text, a line
in the culler's log), and "survives past" is shown by a witness the same rule acts on meanwhile.

A browser session is a client polling the server's REST API (as JupyterLab does) with
JUPYTERHUB_ACTIVITY_INTERVAL 1, so its activity reaches the hub at once; without a session, a server's last
activity stays at its start.

The rule for a partitioned AMD GPU: AMD's exporter reports activity only for partition 0, and the series
carries the partition type (`gpu_compute_partition_type`, e.g. cpx). The `amd` preset counts only unpartitioned
(SPX) devices, so every server on a partitioned GPU, partition 0's included, has no known GPU use and follows
today's activity rule: never culled for a figure that is not its own, and never kept by one either.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager

import httpx
import pytest
from support import wait_for

from .course import _node
from .gpuexporter import GpuExporter, Prometheus
from .hub import ClusterHub, people_overlay

PEOPLE = {name: ["gpu-culling"] for name in ("ivy", "jack", "kim", "lena", "mia", "nora", "omar", "pat")}
NVIDIA = "culling-l40s"  # this module's NVIDIA kind, on a node of its own (the course has no NVIDIA node)
NVIDIA_NODE = f"{NVIDIA}-1"
GPU_RESOURCE = "culling-gpu"
WINDOW = 30  # seconds: idle.minutes 0.5
IDLE_RULE = {"belowPercent": 5, "minutes": 0.5, "warnMinutes": 0.25}
WARNING = "Your GPU has been idle for"
OUTAGE = "GPU use unknown: Prometheus at"
WAIT = 150  # seconds: generous for a busy machine, whatever the state waited for


def overlay(prometheus_url: str) -> dict:
    return {
        "gpuMetrics": {"prometheusUrl": prometheus_url, "timeoutSeconds": 2},
        "sessions": {"idleCullMinutes": 1},
        "catalog": {
            "accelerators": {
                NVIDIA: {"displayName": "NVIDIA L40S (culling test)", "description": "dcgm-exporter reports its use",
                         "gpu": {"resource": "nvidia.com/gpu", "count": 1}, "nodeSelector": {"node-type": NVIDIA},
                         "idle": {"exporter": "dcgm", **IDLE_RULE}},
                "mi300x": {"idle": {"exporter": "amd", **IDLE_RULE}},
            },
            "resources": {GPU_RESOURCE: {"displayName": "GPU notebook", "description": "Judged by its GPU use",
                                         "category": "Courses", "image": "scipy", "cpu": {"request": 1, "limit": 1},
                                         "memory": {"request": "1Gi", "limit": "1Gi"}, "accelerators": [NVIDIA, "mi300x"],
                                         # a browser's polling reaches the hub at once (the default is 300 s)
                                         "env": {"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}}},
            "teams": {"gpu-culling": {"resources": [GPU_RESOURCE, "cpu-small"], "quota": {"maxServers": 30, "maxGpus": 8}}},
        },
    }


class Gpus:
    """The module's hub, exporter and Prometheus."""

    def __init__(self, hub: ClusterHub, exporter: GpuExporter, prometheus: Prometheus):
        self.hub, self.exporter, self.prometheus = hub, exporter, prometheus
        self.clients: dict[str, httpx.Client] = {}
        self.apis: dict[str, httpx.Client] = {}

    @property
    def namespace(self) -> str:
        return self.hub.namespace

    def client(self, person: str) -> httpx.Client:
        if person not in self.clients:
            self.clients[person] = self.hub.login(person, f"{person}-demo-pass")
        return self.clients[person]

    def api(self, person: str) -> httpx.Client:
        if person not in self.apis:
            self.apis[person] = self.hub.api(self.hub.token(self.client(person), f"local:{person}"))
        return self.apis[person]

    def start(self, person: str, resource: str = GPU_RESOURCE, accelerator: str | None = NVIDIA) -> str:
        """The person's default server, started through the REST API; returns its pod's name."""
        user = f"local:{person}"
        self.hub.cluster.top_up_volumes()
        api = self.api(person)
        r = api.post(f"/users/{user}/server", json={"resource": resource, **({"accelerator": accelerator} if accelerator else {})})
        assert r.status_code in (201, 202), r.text[:500]
        self.hub.wait_ready(api, user, timeout=WAIT)
        (pod,) = self.pods(user)
        return pod

    def pods(self, user: str) -> list[str]:
        items = self.hub.cluster.api.get(f"/api/v1/namespaces/{self.namespace}/pods")["items"]
        return [p["metadata"]["name"] for p in items
                if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == user
                and not p["metadata"].get("deletionTimestamp")]

    def server(self, person: str) -> dict | None:
        return self.api(person).get(f"/users/local:{person}").json()["servers"].get("")

    def wait_stopped(self, person: str) -> str:
        """Until the hub has forgotten the server and its pod is gone; its usage record's end reason."""
        user = f"local:{person}"
        wait_for(lambda: not self.pods(user) and self.server(person) is None, f"the server of {user} stopped", WAIT, 0.5)
        return end_reason(self.hub, user)

    def home(self, person: str) -> str:
        return self.client(person).get("/hub/home").text

    def culler_lines(self, since: int = 0) -> list[str]:
        return [line for line in self.hub.log()[since:].splitlines() if "IdleCuller" in line]


def end_reason(hub: ClusterHub, user: str) -> str | None:
    """The latest usage record's end reason, from the hub's database (what `teamhub usage` and the admin page read)."""
    (path,) = list(hub.state.rglob("jupyterhub.sqlite"))
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT end_reason FROM teamhub_usage WHERE person = ? ORDER BY id DESC LIMIT 1", (user,)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


@contextmanager
def browser_tab(gpus: Gpus, person: str):
    """An open browser tab: polls the server's sessions API through the proxy every half second, as JupyterLab
    does, while the block runs. Yields the count of answers it got (a one-item list)."""
    url = f"{gpus.hub.url}/user/local%3A{person}/api/sessions"
    headers = {"Authorization": f"token {gpus.hub.token(gpus.client(person), f'local:{person}')}"}
    answered, closed = [0], threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=10) as client:
            while not closed.is_set():
                try:
                    answered[0] += client.get(url, headers=headers).status_code == 200
                except httpx.HTTPError:
                    pass  # the server is gone: the tab shows an error and keeps trying, like a browser
                closed.wait(0.5)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        closed.set()
        thread.join(15)


def activity_seen(gpus: Gpus, person: str) -> None:
    """Until the hub has the session's activity: the server's last activity moved past its start twice."""
    seen = []

    def moved():
        server = gpus.server(person) or {}
        if server.get("last_activity") and server["last_activity"] > server.get("started", ""):
            seen.append(server["last_activity"])
        return len(set(seen)) >= 2

    wait_for(moved, f"the session's activity of local:{person} reaching the hub", 60, 0.5)


@pytest.fixture(scope="module")
def gpus(cluster, shipped_venv, tmp_path_factory):
    state = tmp_path_factory.mktemp("gpu-culling")
    exporter = GpuExporter().start()
    prometheus = Prometheus(state / "prometheus", [exporter.target])
    hub = None
    ns = cluster.new_namespace("gpu-culling")
    node = _node(NVIDIA_NODE, {"node-type": NVIDIA}, {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"}, [])
    cluster.api.create("/api/v1/nodes", node)
    try:
        prometheus.start()
        wait_for(lambda: NVIDIA_NODE in cluster.ready_nodes(), f"the kwok node {NVIDIA_NODE}", 60)
        cluster.give_address(NVIDIA_NODE)
        clock = state / "clock"
        clock.write_text("0")  # never moved: under the test clock the culler and the GPU watch look every second
        values = people_overlay(state / "overlay.yaml", PEOPLE, overlay(prometheus.url))
        hub = ClusterHub(cluster, ns, shipped_venv, state, overlays=(values,), extra_env={"TEAMHUB_TEST_CLOCK_FILE": str(clock)})
        hub.start()
        yield Gpus(hub, exporter, prometheus)
    finally:
        if hub is not None:
            hub.stop()
        prometheus.stop()
        exporter.stop()
        cluster.api.delete(f"/api/v1/nodes/{NVIDIA_NODE}")
        cluster.delete_namespace(ns)
    assert not hub.servers.errors, hub.servers.errors


@pytest.mark.timeout(600)
def test_an_idle_gpu_with_an_open_session_is_warned_then_stopped_as_gpu_idle(gpus):
    """ivy's tab polls her server the whole time, but her GPU computes nothing: her home page warns her, then
    the culler stops the server for its GPU (`gpu-idle`), and her home page says why."""
    pod = gpus.start("ivy")
    gpus.exporter.dcgm(gpus.namespace, pod, 0)
    with browser_tab(gpus, "ivy") as answered:
        activity_seen(gpus, "ivy")
        warned = wait_for(lambda: (page := gpus.home("ivy")) and WARNING in page and page, "the GPU warning on ivy's home page",
                          WAIT, 0.5)
        assert "this server stops in" in warned and "unless it computes" in warned
        assert gpus.wait_stopped("ivy") == "gpu-idle"
        assert answered[0] > 0
    assert any("GPU of local:ivy/ idle for" in line for line in gpus.culler_lines())
    page = gpus.home("ivy")
    assert "was stopped at" in page and f"its GPU computed nothing for {WINDOW} s" in page, page[-2000:]
    gpus.exporter.forget(gpus.namespace, pod)


@pytest.mark.timeout(600)
def test_a_busy_gpu_outlives_the_activity_timeout_and_a_cpu_server_does_not(gpus):
    """No browser for either: kim's CPU server follows today's rule (stopped as `idle-cull` after
    idleCullMinutes), jack's GPU at 90 % is kept past that same timeout (the culler says so) and keeps running."""
    since = len(gpus.hub.log())
    jack = gpus.start("jack")
    gpus.exporter.dcgm(gpus.namespace, jack, 90)
    gpus.prometheus.wait_for_sample(f'DCGM_FI_DEV_GPU_UTIL{{pod="{jack}"}}', 90)
    gpus.start("kim", "cpu-small", None)
    assert gpus.wait_stopped("kim") == "idle-cull"
    wait_for(lambda: any("Keeping local:jack/: no activity for" in line for line in gpus.culler_lines(since)),
             "the culler keeping jack's busy GPU past the activity timeout", WAIT, 0.5)
    assert gpus.pods("local:jack") == [jack] and (gpus.server("jack") or {}).get("ready")
    assert WARNING not in gpus.home("jack")
    assert gpus.api("jack").delete("/users/local:jack/server").status_code in (202, 204)
    assert gpus.wait_stopped("jack") == "stopped"
    gpus.exporter.forget(gpus.namespace, jack)


@pytest.mark.timeout(600)
def test_prometheus_down_falls_back_to_the_activity_rule_with_one_warning(gpus):
    """lena's GPU is idle and her tab open when Prometheus stops. Until it answers again everyone follows
    today's rule: mia's CPU server without a browser is stopped after idleCullMinutes, twice lena's GPU window,
    while lena's server runs on; the culler logs one WARNING for the whole outage. When Prometheus is back,
    lena's GPU is judged again: the outage outlasted her window and the query reaches back one window, so her
    idle time counts from the first points after it (not stopped the moment Prometheus returns); then `gpu-idle`."""
    since = len(gpus.hub.log())
    lena = gpus.start("lena")
    gpus.exporter.dcgm(gpus.namespace, lena, 90)  # busy until just before the outage: her whole window lies in it
    with browser_tab(gpus, "lena"):
        activity_seen(gpus, "lena")
        gpus.exporter.dcgm(gpus.namespace, lena, 0)
        gpus.prometheus.wait_for_sample(f'DCGM_FI_DEV_GPU_UTIL{{pod="{lena}"}}', 0)
        gpus.prometheus.stop()
        try:
            wait_for(lambda: any(OUTAGE in line for line in gpus.culler_lines(since)), "the culler's outage warning", WAIT, 0.5)
            gpus.start("mia", "cpu-small", None)
            assert gpus.wait_stopped("mia") == "idle-cull"
            assert gpus.pods("local:lena") == [lena], "lena's server was culled during the outage"
            outage = [line for line in gpus.culler_lines(since) if OUTAGE in line]
            assert len(outage) == 1 and outage[0].startswith("[W"), outage
        finally:
            gpus.prometheus.start()
        wait_for(lambda: any("answers again" in line for line in gpus.culler_lines(since)), "the culler seeing Prometheus again",
                 WAIT, 0.5)
        assert gpus.wait_stopped("lena") == "gpu-idle"
    assert len([line for line in gpus.culler_lines(since) if OUTAGE in line]) == 1
    gpus.exporter.forget(gpus.namespace, lena)


@pytest.mark.timeout(600)
def test_a_partitioned_amd_gpu_is_not_judged_by_partition_0s_figure(gpus):
    """nora and omar work on two partitions (CPX) of one MI300X; AMD's exporter reports only partition 0,
    at 0 %, and attributes that figure to both their pods. pat's unpartitioned (SPX) MI300X, also at 0 % and
    started after them, is stopped as `gpu-idle`; at that point nora's and omar's servers still run and
    were never warned about: partitioned GPUs follow today's rule. When their tabs close, that rule stops
    them as `idle-cull`."""
    since = len(gpus.hub.log())
    partitioned = {}
    for person in ("nora", "omar"):
        pod = partitioned[person] = gpus.start(person, accelerator="mi300x")
        gpus.exporter.amd(gpus.namespace, pod, 0, partition="cpx", partition_id=0)
    with browser_tab(gpus, "nora"), browser_tab(gpus, "omar"):
        for person in partitioned:
            activity_seen(gpus, person)
        pat = gpus.start("pat", accelerator="mi300x")
        gpus.exporter.amd(gpus.namespace, pat, 0, gpu=1)
        with browser_tab(gpus, "pat"):
            assert gpus.wait_stopped("pat") == "gpu-idle"
        for person, pod in partitioned.items():
            assert gpus.pods(f"local:{person}") == [pod], f"{person}'s server was culled for partition 0's figure"
            assert WARNING not in gpus.home(person)
        cpx = f'gpu_gfx_activity{{namespace="{gpus.namespace}",gpu_compute_partition_type="cpx"}}'
        assert gpus.prometheus.values(cpx, by="pod") == {pod: 0 for pod in partitioned.values()}  # there all along
    for person in partitioned:
        assert gpus.wait_stopped(person) == "idle-cull"
    culled_for_gpu = [line for line in gpus.culler_lines(since) if "GPU of local:" in line]
    assert len(culled_for_gpu) >= 1 and all("local:pat/" in line for line in culled_for_gpu), culled_for_gpu
    for pod in (*partitioned.values(), pat):
        gpus.exporter.forget(gpus.namespace, pod)
