"""`teamhub prepull-await`, the hook puller's bounded wait, against a fake API server."""

from __future__ import annotations

import io

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
    def __init__(self, states):
        self.states = list(states)  # one (daemonset, pods) per poll
        self.paths = []

    def get(self, path):
        self.paths.append(path)
        ds, pods = self.states[0]
        if "/daemonsets/" in path:
            if isinstance(ds, Exception):
                raise ds
            return ds
        if len(self.states) > 1:
            self.states.pop(0)
        return {"items": pods}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


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
    assert await_daemonsets(api, "lab", ["p"], timeout=60, interval=5, clock=clock, sleep=clock.sleep, out=out)
    assert clock.now == 5
    assert "done: p: 1/1 nodes have the images" in out.getvalue()
    assert api.paths[0] == "/apis/apps/v1/namespaces/lab/daemonsets/p"
    assert "labelSelector=app.kubernetes.io/component%3Dhook-puller%2Cteamhub.dev/puller-group%3Dp" in api.paths[1]


def test_gives_up_after_the_timeout_without_failing():
    api = FakeApi([(daemonset(desired=2), [pod("a", ready=True), pod("b", waiting="ImagePullBackOff")])])
    clock, out = Clock(), io.StringIO()
    assert not await_daemonsets(api, "lab", ["p"], timeout=30, interval=10, clock=clock, sleep=clock.sleep, out=out)
    assert clock.now == 30
    assert "gave up: p: 1/2" in out.getvalue() and "the upgrade continues" in out.getvalue()


def test_api_errors_are_retried_until_the_timeout():
    api = FakeApi([(ApiError("GET ...: HTTP 503"), [])])
    clock, out = Clock(), io.StringIO()
    assert not await_daemonsets(api, "lab", ["p"], timeout=10, interval=5, clock=clock, sleep=clock.sleep, out=out)
    assert "HTTP 503" in out.getvalue()


def test_outside_a_cluster_the_command_exits_0(teamhub):
    proc = teamhub("prepull-await", "--namespace", "lab", "--daemonset", "x", "--timeout", "1",
                   env=tree_env(KUBERNETES_SERVICE_HOST=""))
    assert proc.returncode == 0, proc.stderr
    assert "not waiting" in proc.stderr


def test_in_cluster_api_reads_the_service_account(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("tok\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    api = prepull.InClusterApi.from_environment(tmp_path)
    assert api.base_url == "https://10.0.0.1:6443" and api.token == "tok"
