"""The chart on a real node: the hub image runs as the chart says, a person starts a real JupyterLab from
base-cpu through the real proxy, and an upgrade restarts the hub cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from hubprocess import HubProcess
from support import wait_for

from .conftest import NAMESPACE, PERSON, RELEASE

pytestmark = pytest.mark.timeout(2400)  # the first test pays for the image builds and the node's start


def proc_status(pid: int) -> dict:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_the_hub_pod_runs_the_image_as_the_chart_says(release):
    """Ready with its probes; tini is PID 1 (args:, not command:), uid 1000, and it never failed to bind."""
    pod = release.running_pod("hub")
    (status,) = pod["status"]["containerStatuses"]
    log = release.node.pod_log(pod, "hub")
    assert "Failed to bind" not in log, log[-3000:]
    # JupyterHub exits when the proxy's API is not up yet at its first start; one such restart is allowed.
    assert status["restartCount"] == 0 or (status["restartCount"] == 1 and "proxy" in log.lower()), (status, log[-3000:])
    pid = release.node.container_pid(pod, "hub")
    assert cmdline(pid)[:3] == ["/usr/bin/tini", "-g", "--"], cmdline(pid)
    st = proc_status(pid)
    assert st["NSpid"].split()[-1] == "1", st["NSpid"]  # PID 1 in the pod
    assert st["Uid"].split()[0] == "1000" and st["NoNewPrivs"] == "1" and int(st["CapEff"], 16) == 0, st


def proxy_url(release) -> str:
    pod = release.running_pod("proxy")
    return f"http://{pod['status']['podIP']}:8000"


def test_health_through_the_proxy_pod(release):
    url = proxy_url(release)
    r = wait_for(lambda: _get(f"{url}/hub/health"), "/hub/health through the proxy", timeout=120)
    assert r.status_code == 200, r.text


def _get(url):
    try:
        r = httpx.get(url, timeout=10)
        return r if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_hooks_and_helm_test_ran_as_containers_on_the_node(release):
    """The prepull awaiter (install hook) and `helm test` ran on the real node: the kubelet wrote their status."""
    assert release.ran_on_node("prepull-awaiter"), "the prepull awaiter never ran on the node"
    assert release.ran_on_node("upgrade-check"), "the pre-install check never ran on the node"
    out = release.helm("test", RELEASE, "-n", NAMESPACE, "--timeout=5m").stdout
    assert "Succeeded" in out, out
    assert release.ran_on_node("test-hub"), "helm test's pod never ran on the node"


class ProxiedHub:
    """The hub as a person reaches it: through the proxy pod (HubProcess's client helpers, nothing else)."""

    login = HubProcess.login
    xsrf_headers = HubProcess.xsrf_headers
    token = HubProcess.token
    api = HubProcess.api
    spawn_form = HubProcess.spawn_form

    def __init__(self, url: str):
        self.url = url


def user_pods(release) -> list[dict]:
    return [p for p in release.pods() if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username")]


def wait_ready(api: httpx.Client, user: str, release) -> dict:
    def ready():
        server = api.get(f"/users/{user}").json().get("servers", {}).get("")
        return server if server and server.get("ready") else None
    try:
        return wait_for(ready, f"{user}'s server to be ready", timeout=300, interval=0.5)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{release.describe()}") from exc


def test_a_person_starts_cpu_small_and_keeps_their_file(release):
    hub = ProxiedHub(proxy_url(release))
    user = f"local:{PERSON}"
    client = hub.login(PERSON, f"{PERSON}-demo-pass")
    api = hub.api(hub.token(client, user))
    r = hub.spawn_form(client, {"resource": "cpu-small"})
    assert r.status_code == 302 and "/hub/spawn-pending/" in r.headers["location"], r.text[:500]
    server = wait_ready(api, user, release)

    (pod,) = [p for p in user_pods(release) if p["status"].get("phase") == "Running"]
    pid = release.node.container_pid(pod, "notebook")
    assert cmdline(pid)[0] == "/usr/bin/tini", cmdline(pid)
    st = proc_status(pid)
    assert st["Uid"].split()[0] == "1000" and st["Gid"].split()[0] == "100", st
    assert st["NoNewPrivs"] == "1" and int(st["CapEff"], 16) == 0 and st["Seccomp"] == "2", st  # restricted
    claims = release.api.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")["items"]
    home = [c for c in claims if c["metadata"]["name"] in {v.get("persistentVolumeClaim", {}).get("claimName")
                                                           for v in pod["spec"]["volumes"]}]
    assert home and home[0]["status"]["phase"] == "Bound", claims

    # JupyterLab answers through the proxy, after the OAuth round trip through the hub.
    lab = client.get(f"{server['url']}lab", follow_redirects=True)
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.status_code, lab.text[:300])
    jupyter = httpx.Client(base_url=hub.url, headers=api.headers, timeout=30)
    note = f"written at {time.time()}"
    r = jupyter.put(f"{server['url']}api/contents/survivor.txt", json={"type": "file", "format": "text", "content": note})
    assert r.status_code in (200, 201), r.text

    assert api.delete(f"/users/{user}/server").status_code in (202, 204)
    wait_for(lambda: not user_pods(release), "the stopped server's pod to go", timeout=180, interval=0.5)
    r = api.post(f"/users/{user}/server", json={"resource": "cpu-small"})
    assert r.status_code in (201, 202), r.text
    server = wait_ready(api, user, release)
    r = jupyter.get(f"{server['url']}api/contents/survivor.txt")
    assert r.status_code == 200 and r.json()["content"] == note, r.text
    assert api.delete(f"/users/{user}/server").status_code in (202, 204)
    wait_for(lambda: not user_pods(release), "the stopped server's pod to go", timeout=180, interval=0.5)


def test_an_upgrade_restarts_the_hub_cleanly(release, tmp_path_factory):
    before = release.running_pod("hub")
    change = release.dir / "upgrade.yaml"
    change.write_text("sessions:\n  defaultMinutes: 45\n")
    release.install(change)
    after = release.running_pod("hub")
    assert after["metadata"]["uid"] != before["metadata"]["uid"], "the hub did not restart for a value it reads"
    (status,) = after["status"]["containerStatuses"]
    log = release.node.pod_log(after, "hub")
    assert status["restartCount"] == 0 and "Failed to bind" not in log, (status, log[-3000:])
    checks = release.ran_on_node("upgrade-check")
    assert len(checks) >= 2, f"the pre-upgrade check did not run again on the node: {checks}"
