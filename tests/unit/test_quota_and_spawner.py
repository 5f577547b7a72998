"""Team quotas without races, the launch page, fail-fast stopping a spawn, and the hub config."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
import yaml
from hubhelpers import VALUES, FakeUser, configured, kube_spawner, runtime
from support import DEMO_VALUES
from teamhub.catalog.access import Person
from teamhub.catalog.loader import load_or_raise
from teamhub.hub import launchpage
from teamhub.hub.quota import Hold, QuotaBook
from tornado import web

QUOTA_VALUES = """
auth:
  local:
    enabled: true
    users:
      u1: {passwordHash: "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa", teams: [lab]}
      u2: {passwordHash: "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa", teams: [lab]}
      u3: {passwordHash: "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa", teams: [lab]}
catalog:
  images:
    img: {name: example.org/img, tag: "1"}
  resources:
    gpu:
      displayName: GPU box
      image: img
      cpu: {request: 1}
      memory: {request: 1Gi}
      gpu: {resource: nvidia.com/gpu, count: 1}
    cpu:
      displayName: CPU box
      image: img
      cpu: {request: 1}
      memory: {request: 1Gi}
  teams:
    lab:
      resources: [gpu, cpu]
      quota: {maxServers: 2, maxGpus: 1}
"""


@pytest.fixture
def quota_config(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(QUOTA_VALUES)
    return configured(path)


class SlowUser(FakeUser):
    async def get_auth_state(self):
        await asyncio.sleep(0.01)  # let concurrent starts interleave at every await
        return {"groups": []}


def spawner_for(c, name):
    sp = kube_spawner(c, name)
    sp.user = SlowUser(name)
    return sp


def test_two_simultaneous_starts_cannot_both_take_the_last_gpu(quota_config):
    spawners = [spawner_for(quota_config, f"local:u{i}") for i in (1, 2, 3)]

    async def race():
        return await asyncio.gather(*(sp.teamhub_apply({"resource": "gpu"}) for sp in spawners), return_exceptions=True)

    results = asyncio.run(race())
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, web.HTTPError)]
    assert len(ok) == 1 and len(refused) == 2
    assert all(r.status_code == 403 and "GPUs" in r.jupyterhub_message for r in refused)
    assert runtime(quota_config).quota.usage("lab").gpus == 1


def test_server_quota_and_release(quota_config):
    a, b, c3 = (spawner_for(quota_config, f"local:u{i}") for i in (1, 2, 3))
    asyncio.run(a.teamhub_apply({"resource": "cpu"}))
    asyncio.run(b.teamhub_apply({"resource": "cpu"}))
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(c3.teamhub_apply({"resource": "cpu"}))
    assert info.value.status_code == 403 and "2 of its 2 allowed servers" in info.value.jupyterhub_message
    assert info.value.reason == "refused-quota"
    a.clear_state()  # what JupyterHub does after a server stops
    asyncio.run(c3.teamhub_apply({"resource": "cpu"}))
    assert runtime(quota_config).quota.usage("lab").servers == 2


def test_a_refused_start_shows_the_launch_page_with_the_persons_own_choice(quota_config):
    # Regression: after a refusal the page came back with the first environment selected, so pressing Start
    # again silently started something else than what the person had chosen.
    a, b, c3 = (spawner_for(quota_config, f"local:u{i}") for i in (1, 2, 3))
    asyncio.run(a.teamhub_apply({"resource": "cpu"}))
    asyncio.run(b.teamhub_apply({"resource": "cpu"}))
    with pytest.raises(web.HTTPError):
        asyncio.run(c3.teamhub_apply({"resource": "cpu", "sessionMinutes": 30}))
    assert c3.user_options == {}  # never reused to start anything
    html = asyncio.run(c3.get_options_form())  # as JupyterHub asks for it
    assert re.search(r'value="cpu"[^>]*checked', html) and not re.search(r'value="gpu"[^>]*checked', html)
    assert re.search(r'value="30" selected', html)
    a.clear_state()
    asyncio.run(c3.teamhub_apply({"resource": "gpu"}))  # a successful start forgets the refused request
    assert c3.teamhub_refused_request is None


def test_restart_of_same_server_does_not_count_twice(quota_config):
    a = spawner_for(quota_config, "local:u1")
    asyncio.run(a.teamhub_apply({"resource": "gpu"}))
    asyncio.run(a.teamhub_apply({"resource": "gpu"}))
    assert runtime(quota_config).quota.usage("lab").gpus == 1


def test_hub_restart_restores_holds_from_state(quota_config):
    a = spawner_for(quota_config, "local:u1")
    asyncio.run(a.teamhub_apply({"resource": "gpu"}))
    state = a.get_state()
    runtime(quota_config).quota = QuotaBook()  # a new hub process
    b = spawner_for(quota_config, "local:u1")
    b.load_state(state)
    with pytest.raises(web.HTTPError):
        asyncio.run(spawner_for(quota_config, "local:u2").teamhub_apply({"resource": "gpu"}))


def test_quota_book_race_without_spawners():
    checked = load_or_raise([VALUES])
    book = QuotaBook()

    async def take(i):
        await asyncio.sleep(0)
        await book.reserve(checked.catalog, Hold(f"u{i}/", "nlp-course", 1))

    async def go():
        return await asyncio.gather(*(take(i) for i in range(10)), return_exceptions=True)

    results = asyncio.run(go())
    assert sum(1 for r in results if r is None) == 4  # nlp-course: maxGpus 4
    assert book.usage("nlp-course").gpus == 4


# --- launch page -------------------------------------------------------------------------------------

def offered(html):
    return set(re.findall(r'name="resource" id="[^"]*" value="([^"]+)"', html))


def test_launch_page_shows_only_allowed_grouped_with_details():
    catalog = load_or_raise(DEMO_VALUES, demo=True).catalog
    html = launchpage.render(catalog, Person("local:alice"))
    assert offered(html) == {"cpu-small", "course-cv", "cpu-large"}
    assert "<legend>Basics</legend>" in html and "<legend>Courses</legend>" in html
    assert "AMD Radeon 8060S" in html and "AMD Instinct MI300X" in html and "NVIDIA" not in html
    assert "pytorch-rocm:2.5-rocm6.2-gfx1151" in html  # the override image is shown with its accelerator
    assert "Computer Vision 2026" in html and "of 8 used, 8 left" in html  # quota
    assert 'value="300"' not in html or "4 h" in html
    assert "http" not in html  # no external assets


def test_launch_page_session_lengths_and_preselection():
    catalog = load_or_raise([VALUES]).catalog
    html = launchpage.render(catalog, Person("local:carol"), previous={"resource": "cpu-small", "sessionMinutes": "30"})
    assert re.search(r'<option value="30" selected>', html)
    assert 'value="480"' in html and 'value="600"' not in html
    nobody = launchpage.render(catalog, Person("github:stranger"))
    assert offered(nobody) == {"cpu-small"}


def test_options_from_form():
    from teamhub.hub.teamhubmixin import options_from_form

    assert options_from_form({"resource": ["cpu-small"], "accelerator": [""], "sessionMinutes": ["30"], "_xsrf": ["x"]}) == \
        {"resource": "cpu-small", "sessionMinutes": "30"}
    assert options_from_form({"resource": ["a", "b"]}) == {"resource": ["a", "b"]}


# --- fail fast ----------------------------------------------------------------------------------------

class FakeReflector:
    def __init__(self):
        self.pods = {}


def test_failed_scheduling_stops_the_spawn_within_seconds(monkeypatch):
    from jupyterhub.spawner import SpawnException
    from kubespawner import KubeSpawner
    from teamhub.hub.podspawner import TeamhubKubeSpawner

    c = configured()
    sp = kube_spawner(c)
    asyncio.run(sp.teamhub_apply({"resource": "course-cv", "accelerator": "strix-halo"}))
    reflector = FakeReflector()
    monkeypatch.setattr(TeamhubKubeSpawner, "pod_reflector", property(lambda self: reflector))
    sp.failfast_interval = 0.05

    async def never_schedules(self):
        reflector.pods[f"{self.namespace}/{self.pod_name}"] = {"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 3 Insufficient amd.com/gpu."}]}}
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    cancelled: list = []
    monkeypatch.setattr(KubeSpawner, "_start", never_schedules)
    with pytest.raises(SpawnException) as info:
        asyncio.run(sp._start())
    assert cancelled, "the pending start was not cancelled: the verdict did not end it"
    assert info.value.jupyterhub_message.startswith("No free AMD GPU of kind strix-halo right now: 0 of 3 nodes")
    assert (info.value.reason, info.value.status_code) == ("failed-unschedulable", 503)  # no room is 503, not a hub fault; JupyterHub's spawn metric counts the reason


# --- hub configuration ---------------------------------------------------------------------------------

def culler_settings(service) -> dict:
    """What the hub hands the culler (teamhub/culler/settings.py), read by its config file."""
    from teamhub.culler.settings import ENV

    return json.loads(service["environment"][ENV])


def test_idle_culler_service_has_only_the_scopes_it_needs():
    """Issue 28: the culler runs from its traitlets config file; without GPU rules it reads no server state."""
    c = configured()
    (service,) = c.JupyterHub.services.get_value([])
    assert service["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert service["command"][3].startswith("--config=") and service["command"][3].endswith("culler/idle_culler_config.py")
    assert len(service["command"]) == 4  # everything else is in the config file
    assert culler_settings(service)["idleSeconds"] == 3600 and culler_settings(service)["prometheus"] is None
    (role,) = c.JupyterHub.load_roles.get_value([])
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers"}
    assert role["services"] == ["idle-culler"]


def test_idle_culler_calls_the_hub_on_loopback_in_its_pod():
    """Issue 15 item 5: JupyterHub gives a managed service hub_connect_url (the hub Service), which the chart's
    NetworkPolicies do not open from the hub to itself (tests/chart/test_network_policy.py shows the denial)."""
    c = configured(environ={"TEAMHUB_HUB_CONNECT_URL": "http://teamhub-hub:8081"})
    (service,) = c.JupyterHub.services.get_value([])
    assert culler_settings(service)["hubApi"] == "http://127.0.0.1:8081/hub/api"
    assert c.JupyterHub.hub_ip == "0.0.0.0" and c.JupyterHub.hub_port == 8081  # so loopback reaches it
    (local,) = configured(mode="local").JupyterHub.services.get_value([])
    assert culler_settings(local)["hubApi"] is None  # local mode: the hub is on loopback anyway


def test_the_hub_binds_every_interface_not_the_services_address():
    """Issue 31: with a connect URL and no bind URL JupyterHub 6 binds the connect URL's host (the Service's
    ClusterIP, which no pod owns): the chart's hub crash-looped with "Cannot assign requested address"."""
    c = configured(environ={"TEAMHUB_HUB_CONNECT_URL": "http://teamhub-hub:8081"})
    assert c.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"
    assert c.JupyterHub.hub_connect_url == "http://teamhub-hub:8081"
    moved = configured(environ={"TEAMHUB_HUB_CONNECT_URL": "http://h:8081", "TEAMHUB_HUB_BIND_URL": "http://127.0.0.1:18081"})
    assert moved.JupyterHub.hub_bind_url == "http://127.0.0.1:18081"
    (service,) = moved.JupyterHub.services.get_value([])
    assert culler_settings(service)["hubApi"] == "http://127.0.0.1:18081/hub/api"  # the culler follows the hub


def test_concurrent_starts_is_jupyterhubs_spawn_limit(tmp_path):
    """JupyterHub answers 429 (with Retry-After) to starts beyond concurrent_spawn_limit: 100 by default, raised
    for a class of 300 pressing Start together through sessions.concurrentStarts."""
    assert configured().JupyterHub.concurrent_spawn_limit == 100
    data = yaml.safe_load(VALUES.read_text())
    data["sessions"]["concurrentStarts"] = 320
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    assert configured(path).JupyterHub.concurrent_spawn_limit == 320


def test_idle_culler_off(tmp_path):
    data = yaml.safe_load(VALUES.read_text())
    data["sessions"]["idleCullMinutes"] = 0
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    c = configured(path)
    assert "services" not in c.JupyterHub
    assert c.JupyterHub.cleanup_servers is False  # kubernetes: a hub restart keeps servers


def test_invalid_values_stop_the_hub(tmp_path):
    import os
    import subprocess
    import sys

    from hubhelpers import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT / "hub-image"), "TEAMHUB_VALUES": str(tmp_path / "bad.yaml"),
           "TEAMHUB_DATA_DIR": str(tmp_path)}
    bad = tmp_path / "bad.yaml"
    bad.write_text("catalog:\n  teams:\n    t:\n      resources: [nope]\n")
    r = subprocess.run([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub-image" / "jupyterhub_config.py")],
                       env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "unknown resource 'nope'" in r.stderr
    assert "no login method is enabled" in r.stderr


def test_at_the_deadline_poll_deletes_the_pod_before_reporting_it_stopped(quota_config, monkeypatch):
    """Issue 11 item 6, Kubernetes side: reporting "stopped" is not enough, the pod must be deleted (the
    local side, a real process, is tests/integration/test_deadline.py)."""
    from kubespawner import KubeSpawner

    deleted, polled = [], []

    async def delete_pod(self, now=False):
        deleted.append(self.pod_name)
        assert await self.poll() is None  # inside stop(), poll() reports the pod as it is, not the deadline

    async def pod_state(self):
        polled.append(self.pod_name)
        return None  # the pod still runs

    monkeypatch.setattr(KubeSpawner, "stop", delete_pod)
    monkeypatch.setattr(KubeSpawner, "poll", pod_state)
    sp = spawner_for(quota_config, "local:u1")
    asyncio.run(sp.teamhub_apply({"resource": "cpu"}))
    assert asyncio.run(sp.poll()) is None and deleted == []  # before the deadline: running, untouched
    sp.teamhub_info["deadline"] = time.time() - 1
    assert asyncio.run(sp.poll()) == 0
    assert deleted == [sp.pod_name]
    assert runtime(quota_config).quota.usage("lab").servers == 0  # its place is given back

    async def like_jupyterhub():
        """What JupyterHub does after a poll found the server stopped: its poll callback polls again, then
        User.stop polls and calls stop() only for a server still running."""
        assert await sp.poll() == 0
        if await sp.poll() is None:
            await sp.stop()

    asyncio.run(like_jupyterhub())
    assert deleted == [sp.pod_name]  # issue 24: the pod is deleted once, not at every poll and again by the stop
    asyncio.run(sp.stop())  # a stop that still comes (the API) has nothing left to delete
    assert deleted == [sp.pod_name]


def test_a_spawner_without_the_runtime_fails_loudly(quota_config):
    """The quota book comes from configuration (c.TeamhubKubeSpawner.teamhub_runtime). Without it, restoring
    or releasing a hold must fail, not silently skip the quota (spawners once swallowed the RuntimeError)."""
    from teamhub.hub.podspawner import TeamhubKubeSpawner

    a = spawner_for(quota_config, "local:u1")
    asyncio.run(a.teamhub_apply({"resource": "gpu"}))
    state = a.get_state()
    bare = TeamhubKubeSpawner(_mock=True, user=FakeUser("local:u1"))
    with pytest.raises(RuntimeError, match="teamhub_runtime is not set"):
        bare.load_state(state)
    with pytest.raises(RuntimeError, match="teamhub_runtime is not set"):
        bare.clear_state()
    # configured spawners share the one runtime: a hold taken by one is seen through another
    assert spawner_for(quota_config, "local:u2").teamhub is a.teamhub
    assert runtime(quota_config).quota.usage("lab").gpus == 1


def test_a_start_still_pending_when_the_team_budget_runs_out_is_stopped(tmp_path, monkeypatch):
    """Issue 14: JupyterHub polls a server only once its start returned, and a pod can stay pending for minutes
    (pulling its image) while its usage record counts. The start's own watch stops it when the team's budget
    runs out: a 403 with the budget's sentence, the pod deleted at once, the record ended as `budget`. The
    test clock moves past the 3 GPU-minutes while the start is pending."""
    from kubespawner import KubeSpawner
    from teamhub.clock import TEST_CLOCK_ENV
    from teamhub.usage import store

    clock = tmp_path / "clock"
    monkeypatch.setenv(TEST_CLOCK_ENV, str(clock))
    path = tmp_path / "values.yaml"
    path.write_text(QUOTA_VALUES.replace("quota: {maxServers: 2, maxGpus: 1}", "quota: {gpuHours: {amount: 0.05}}"))  # 180 GPU-s
    c = configured(path)
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    stops = []

    async def stop(self, now=False):
        stops.append(now)

    monkeypatch.setattr(KubeSpawner, "start", lambda self: asyncio.ensure_future(asyncio.sleep(3600)))  # never runs
    monkeypatch.setattr(KubeSpawner, "stop", stop)
    try:
        sp = spawner_for(c, "local:u1")
        sp.teamhub.usage = s  # what load_from_environment sets once the database is migrated
        sp.poll_interval = 1  # the watch looks every poll interval (sessions.budgetCheckSeconds in the hub)
        asyncio.run(sp.teamhub_apply({"resource": "gpu"}))
        record = sp.teamhub_info["usage"]
        assert sp.teamhub_info["budget_capped"]

        async def pending_past_the_budget():
            start = asyncio.ensure_future(sp.start())
            await asyncio.sleep(0)  # the start is under way
            clock.write_text("240")  # four minutes later: the 3 GPU-minutes are used up
            return await start

        with pytest.raises(web.HTTPError) as info:
            asyncio.run(pending_past_the_budget())
        assert info.value.status_code == 403 and "team budget" in info.value.jupyterhub_message
        assert stops == [True]
        rec = s.get(record)
        assert rec["end_reason"] == "budget" and rec["ended"] - rec["started"] >= 180
    finally:
        s.dispose()


def test_a_budget_the_hub_cannot_read_refuses_the_start_with_503(tmp_path):
    """Issue 24: a locked database during the budget check made JupyterHub answer "400 Invalid user options";
    now the start is refused with a 503 and a sentence (JupyterHub passes an HTTPError through), and the
    team's quota hold is given back."""
    import sqlite3

    from teamhub.usage import record, store

    path = tmp_path / "values.yaml"
    path.write_text(QUOTA_VALUES.replace("quota: {maxServers: 2, maxGpus: 1}", "quota: {maxGpus: 1, gpuHours: {amount: 5}}"))
    c = configured(path)
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    store.migrate(url)
    s = store.Store(url, busy_timeout=0.2)
    lock = sqlite3.connect(tmp_path / "hub.sqlite")
    lock.execute("BEGIN EXCLUSIVE")  # a long write of JupyterHub's holds the database
    try:
        sp = spawner_for(c, "local:u1")
        sp.teamhub.usage = s
        with pytest.raises(web.HTTPError) as info:
            asyncio.run(sp.teamhub_apply({"resource": "gpu"}))
        assert info.value.status_code == 503 and info.value.jupyterhub_message == record.UNREADABLE
        assert runtime(c).quota.usage("lab").gpus == 0
    finally:
        lock.rollback()
        lock.close()
        s.dispose()


def test_a_local_server_that_exits_while_starting_fails_its_start_at_once(quota_config, monkeypatch):
    """Local mode waits for the server inside start() (so the budget watch covers its boot): a process that exits
    meanwhile must fail the start with a sentence at once, not after http_timeout on a dead port."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from jupyterhub.spawner import SimpleLocalProcessSpawner, SpawnException
    from teamhub.cli.demo import free_port
    from teamhub.hub.localspawner import TeamhubLocalSpawner

    async def exits(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self.pid = self.proc.pid
        return "127.0.0.1", free_port()  # nothing listens there

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", exits)
    monkeypatch.setattr(SimpleLocalProcessSpawner, "stop", lambda self, now=False: asyncio.sleep(0))
    sp = TeamhubLocalSpawner(config=quota_config, user=FakeUser("local:u1"))
    sp.server = SimpleNamespace(base_url="/user/local:u1/")
    sp.http_timeout = 600
    asyncio.run(sp.teamhub_apply({"resource": "cpu"}))
    with pytest.raises(SpawnException) as info:  # not the 600 s wait for the port: that would end otherwise
        asyncio.run(sp.start())
    assert info.value.jupyterhub_message == "The server exited while starting (exit status 3); the hub's log has its output."
    assert info.value.reason == "failed-exited"
