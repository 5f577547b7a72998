"""`teamhub prepull-await`, the hook puller's bounded wait, against a fake API server."""

from __future__ import annotations

import asyncio
import io
import subprocess
import urllib.parse

import pytest
from support import tree_env
from teamhub.ops import prepull
from teamhub.ops.prepull import ApiError, assess, await_daemonsets


def daemonset(name="p", desired=3, ready=0, generation=2, observed=2):
    return {"metadata": {"name": name, "generation": generation},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/component": "hook-puller", "teamhub.dev/puller-group": name}}},
            "status": {"desiredNumberScheduled": desired, "numberReady": ready, "observedGeneration": observed}}


def pod(node, ready=False, unschedulable=False, waiting=None):
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    status = {"conditions": conditions}
    if waiting:
        status["initContainerStatuses"] = [{"state": {"waiting": {"reason": waiting}}}]
    return {"metadata": {"name": f"p-{node}"}, "spec": {"nodeName": node}, "status": status}


class FakeApi:
    """The awaiter's two reads, answered from a script of states (one per poll)."""

    def __init__(self, states):
        self.states = list(states)  # one (daemonset, pods) per poll
        self.calls = []

    async def daemonset(self, namespace, name):
        self.calls.append(("daemonset", namespace, name))
        ds = self.states[0][0]
        if isinstance(ds, Exception):
            raise ds
        return ds

    async def pods(self, namespace, selector):
        self.calls.append(("pods", namespace, selector))
        pods = self.states[0][1]
        if len(self.states) > 1:
            self.states.pop(0)
        return pods


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds


def wait(api, names, **kwargs) -> bool:
    return asyncio.run(await_daemonsets(api, "lab", names, **kwargs))


def test_settled_when_every_node_is_ready():
    p = assess(daemonset(desired=2), [pod("a", ready=True), pod("b", ready=True)])
    assert p.settled and p.ready == 2


def test_unschedulable_and_hopeless_pods_count_as_settled():
    p = assess(daemonset(desired=3), [pod("a", ready=True), pod("b", unschedulable=True), pod("c", waiting="InvalidImageName")])
    assert p.settled
    assert p.stuck == ["b: unschedulable", "c: InvalidImageName"]


def test_pulling_pods_and_a_stale_status_are_not_settled():
    assert not assess(daemonset(desired=2), [pod("a", ready=True), pod("b", waiting="ImagePullBackOff")]).settled
    assert not assess(daemonset(desired=0, generation=3, observed=2), []).settled


def test_waits_until_ready_then_succeeds():
    api = FakeApi([(daemonset(desired=1), [pod("a")]), (daemonset(desired=1), [pod("a", ready=True)])])
    clock, out = Clock(), io.StringIO()
    assert wait(api, ["p"], timeout=60, interval=5, clock=clock, sleep=clock.sleep, out=out)
    assert clock.now == 5
    assert "done: p: 1/1 nodes have the images" in out.getvalue()
    assert api.calls[:2] == [("daemonset", "lab", "p"), ("pods", "lab", "app.kubernetes.io/component=hook-puller,teamhub.dev/puller-group=p")]


def test_gives_up_after_the_timeout_without_failing():
    api = FakeApi([(daemonset(desired=2), [pod("a", ready=True), pod("b", waiting="ImagePullBackOff")])])
    clock, out = Clock(), io.StringIO()
    assert not wait(api, ["p"], timeout=30, interval=10, clock=clock, sleep=clock.sleep, out=out)
    assert clock.now == 30
    assert "gave up: p: 1/2" in out.getvalue() and "the upgrade continues" in out.getvalue()


def test_api_errors_are_retried_until_the_timeout():
    api = FakeApi([(ApiError("read_namespaced_daemon_set: HTTP 503"), [])])
    clock, out = Clock(), io.StringIO()
    assert not wait(api, ["p"], timeout=10, interval=5, clock=clock, sleep=clock.sleep, out=out)
    assert "HTTP 503" in out.getvalue()


def test_outside_a_cluster_the_command_exits_0(teamhub):
    proc = teamhub("prepull-await", "--namespace", "lab", "--daemonset", "x", "--timeout", "1",
                   env=tree_env(KUBERNETES_SERVICE_HOST=""))
    assert proc.returncode == 0, proc.stderr
    assert "not waiting" in proc.stderr


def test_in_cluster_api_reads_the_service_account(tmp_path):
    (tmp_path / "token").write_text("tok\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt"), "-subj", "/CN=test-ca", "-days", "1"],
                   check=True, capture_output=True)

    async def configured():
        api = prepull.KubeApi.from_environment(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"})
        await api.close()
        return api.api_client.configuration

    conf = asyncio.run(configured())
    assert conf.host == "https://10.0.0.1:6443" and conf.api_key["BearerToken"] == "Bearer tok\n"
    assert conf.ssl_ca_cert == str(tmp_path / "ca.crt")
    with pytest.raises(ApiError, match="not running in a cluster"):
        prepull.KubeApi.from_environment(tmp_path, {"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": "6443"})


def test_api_answers_and_failures_through_kubernetes_asyncio(tmp_path):
    """KubeApi against a real HTTP server speaking the API's paths: JSON objects come back as dicts, an HTTP
    error and an unreachable server become ApiError (which the awaiter retries until its timeout)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.startswith("/apis/apps/v1/namespaces/lab/daemonsets/p"):
                body, code = daemonset(desired=1), 200
            elif self.path.startswith("/api/v1/namespaces/lab/pods"):
                body, code = {"items": [pod("a", ready=True)]}, 200
            else:
                body, code = {"kind": "Status", "code": 404}, 404
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from kubernetes_asyncio import client

        conf = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
        conf.api_key["BearerToken"] = "Bearer tok"

        async def run():
            api = prepull.KubeApi(client.ApiClient(conf))
            try:
                progress = await prepull.check(api, "lab", "p")
                with pytest.raises(ApiError, match="HTTP 404"):
                    await api.daemonset("lab", "missing")
                return progress
            finally:
                await api.close()

        progress = asyncio.run(run())
        assert progress.settled and progress.ready == 1, progress
        selector = urllib.parse.parse_qs(urllib.parse.urlsplit(seen[1][0]).query)["labelSelector"]
        assert selector == ["app.kubernetes.io/component=hook-puller,teamhub.dev/puller-group=p"]
        assert seen[0][1] == "Bearer tok"
    finally:
        server.shutdown()
    down = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")

    async def unreachable():
        api = prepull.KubeApi(client.ApiClient(down), timeout=2)
        try:
            return await prepull.check(api, "lab", "p")
        finally:
            await api.close()

    server.server_close()
    assert "read_namespaced_daemon_set" in asyncio.run(unreachable()).error
