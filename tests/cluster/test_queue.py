"""The GPU queue (issue 26) with Kueue's real manager: the chart's rendered queue objects are accepted, and
GPU pods labelled for a team's LocalQueue wait in line and are admitted in order as GPUs free up.

The course has two Strix Halo nodes with one GPU each (course.py). The queue's pool is set to those two GPUs, all
guaranteed to cv-course. Pods are the spawner's shape in brief (GPU limit, the kind's node selector, the
queue label); kwok runs them. Every wait polls for a state with a generous deadline.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import yaml
from support import CONFIG

from .chart import CHART, RELEASE
from .controlplane import ApiError
from .kueue import Kueue

EXAMPLE = CONFIG / "examples" / "gpu-queue.yaml"
# The example's numbers, brought to the course cluster's two Strix Halo GPUs.
OVERLAY = {"catalog": {"accelerators": {"strix-halo": {"capacity": 2}},
                       "teams": {"cv-course": {"queue": {"accelerators": {"strix-halo": {"guaranteed": 2, "max": 2}}}},
                                 "vision-lab": {"queue": {"accelerators": {"strix-halo": {"guaranteed": 0}}}}}}}
KUEUE_API = "kueue.x-k8s.io/v1beta2"
GATE = "kueue.x-k8s.io/admission"
WAIT = 90  # seconds: generous, for a busy CI machine


@pytest.fixture(scope="module")
def queue(cluster, kueue, tmp_path_factory):
    """Kueue managing a fresh namespace of user servers, and the chart's queue objects for it."""
    users = kueue.managed_namespace("queue-users")
    applied: list = []
    try:
        overlay = tmp_path_factory.mktemp("queue-values") / "overlay.yaml"
        overlay.write_text(yaml.safe_dump(OVERLAY), encoding="utf-8")
        rendered = render_queue(cluster, users, overlay)
        applied = [d for d in yaml.safe_load_all(rendered) if d]
        cluster.kubectl("apply", "-f", "-", input=rendered)  # through Kueue's webhooks and the CRDs' schemas
        yield {"users": users, "objects": applied, "rendered": rendered, "kueue": kueue}
    finally:
        problems = teardown(cluster, users, applied)
        assert not problems, problems


def render_queue(cluster, users: str, *overlays) -> str:
    """The chart's Kueue objects for the example with `overlays`, its LocalQueues in `users`."""
    files = [a for f in (EXAMPLE, *overlays) for a in ("-f", f)]
    return cluster.helm("helm3", "template", RELEASE, CHART, "-n", "teamhub", *files,
                        "--set", f"singleuser.namespace={users}", "--api-versions", KUEUE_API,
                        "--show-only", "templates/queue/kueue.yaml").stdout


def teardown(cluster, users: str, applied: list) -> list:
    """Pods and queues go while Kueue still runs (it removes its finalizers): the namespace, then the cluster-wide
    queue objects (the next module applies its own under the same names). Every step is tried; the failures are
    returned."""
    cluster_wide = [(d["kind"].lower() + "s", d["metadata"]["name"]) for d in applied if "namespace" not in d["metadata"]]

    def queues_gone() -> bool:
        return not any(cluster.api.ok(f"/apis/{KUEUE_API}/{kind}/{name}") for kind, name in cluster_wide)

    problems = []
    for step in (lambda: cluster.kubectl("delete", "namespace", users, "--wait=false", "--ignore-not-found"),
                 lambda: cluster.plane.wait_until(lambda: not cluster.api.ok(f"/api/v1/namespaces/{users}"), WAIT,
                                                  f"namespace {users} gone"),
                 lambda: [cluster.kubectl("delete", f"{kind}.kueue.x-k8s.io", name, "--ignore-not-found", "--wait=false")
                          for kind, name in cluster_wide],
                 lambda: cluster.plane.wait_until(queues_gone, WAIT, "the queue objects gone")):
        try:
            step()
        except Exception as exc:  # the first failure does not hide the rest
            problems.append(repr(exc))
    return problems


def _pod(name: str, users: str, team: str = "cv-course") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": users,
                     "labels": {"kueue.x-k8s.io/queue-name": f"team-{team}", "teamhub.dev/team": team,
                                "teamhub.dev/accelerator": "strix-halo"}},
        "spec": {"nodeSelector": {"node-type": "strix-halo"}, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "notebook", "image": "registry.example/notebook:1",
                                 "resources": {"limits": {"amd.com/gpu": "1"}}}]},
    }


def _get(cluster, users: str, name: str) -> dict | None:
    try:
        return cluster.api.get(f"/api/v1/namespaces/{users}/pods/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _gated(pod: dict) -> bool:
    return any(g["name"] == GATE for g in pod["spec"].get("schedulingGates", []))


def _running(pod: dict | None) -> bool:
    return bool(pod) and pod.get("status", {}).get("phase") == "Running" and not _gated(pod)


def _states(cluster, users: str, names: list) -> dict:
    pods = {n: _get(cluster, users, n) for n in names}
    return {n: "running" if _running(p) else "gated" if p and _gated(p) else "other" for n, p in pods.items()}


def _strix_gpus_free(cluster) -> bool:
    """No pod of an earlier test still holds a Strix Halo GPU (Kueue counts quota, not devices)."""
    pods = cluster.api.get("/api/v1/pods")["items"]
    return not any(p["spec"].get("nodeName", "").startswith("strix-halo")
                   and p.get("status", {}).get("phase") not in ("Succeeded", "Failed") for p in pods)


def _active(cluster, obj: dict) -> bool:
    kind = obj["kind"].lower() + "s"
    ns = obj["metadata"].get("namespace")
    path = f"/apis/{KUEUE_API}/" + (f"namespaces/{ns}/" if ns else "") + f"{kind}/{obj['metadata']['name']}"
    conditions = cluster.api.get(path).get("status", {}).get("conditions") or []
    return any(c["type"] == "Active" and c["status"] == "True" for c in conditions)


def _wait_active(cluster, queue) -> None:
    queues = [d for d in queue["objects"] if d["kind"] in ("ClusterQueue", "LocalQueue")]
    queue["kueue"].wait(lambda: all(_active(cluster, d) for d in queues), WAIT, "every ClusterQueue and LocalQueue Active")


def test_the_charts_queue_objects_are_accepted_and_active(cluster, queue):
    objs = queue["objects"]
    assert {d["kind"] for d in objs} == {"ResourceFlavor", "Cohort", "ClusterQueue", "LocalQueue"}
    _wait_active(cluster, queue)
    flavor = cluster.api.get(f"/apis/{KUEUE_API}/resourceflavors/{RELEASE}-strix-halo")
    assert flavor["spec"]["nodeLabels"] == {"node-type": "strix-halo"}


def test_two_gpus_four_students_two_run_two_wait_and_the_first_in_line_is_next(cluster, queue):
    users = queue["users"]
    kueue = queue["kueue"]
    _wait_active(cluster, queue)
    kueue.wait(lambda: _strix_gpus_free(cluster), WAIT, "the Strix Halo GPUs free of earlier tests' pods")
    names = [f"student-{i}" for i in range(1, 5)]
    try:
        _two_run_two_wait(cluster, users, kueue, names)
    finally:  # the GPUs go back for the next test
        for name in names:
            cluster.kubectl("delete", "pod", name, "-n", users, "--ignore-not-found", "--wait=false")
        kueue.wait(lambda: all(_get(cluster, users, n) is None for n in names), WAIT, "the students' pods gone")


def _two_run_two_wait(cluster, users: str, kueue: Kueue, names: list) -> None:
    for name in names:
        created = cluster.api.create(f"/api/v1/namespaces/{users}/pods", _pod(name, users))
        # Kueue orders creations within one second by a random id: the next pod comes a second later.
        stamp = datetime.fromisoformat(created["metadata"]["creationTimestamp"].replace("Z", "+00:00")).timestamp()
        kueue.wait(lambda stamp=stamp: time.time() >= stamp + 1.05, 10, "the next second")

    expected = {"student-1": "running", "student-2": "running", "student-3": "gated", "student-4": "gated"}
    kueue.wait(lambda: _states(cluster, users, names) == expected, WAIT, f"two running, two waiting: {expected}")

    # Kueue's visibility API through the control plane's aggregation layer: the places in the team's line.
    pending = f"/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{users}/localqueues/team-cv-course/pendingworkloads"
    uids = {_get(cluster, users, n)["metadata"]["uid"]: n for n in ("student-3", "student-4")}

    def places() -> dict:
        return {uids.get(o["uid"]): item.get("positionInLocalQueue", 0) for item in cluster.api.get(pending)["items"]
                for o in item["metadata"].get("ownerReferences", [])}

    kueue.wait(lambda: places() == {"student-3": 0, "student-4": 1}, WAIT, "places 0 and 1 from the visibility API")

    admitted = _get(cluster, users, "student-1")
    asked = _pod("student-1", users)
    # Kueue's admission changed only the gates and its own labels and annotations, never the placement.
    assert admitted["spec"]["nodeSelector"] == asked["spec"]["nodeSelector"]
    assert {k: v for k, v in admitted["metadata"]["labels"].items() if not k.startswith("kueue.x-k8s.io/")} == \
           {k: v for k, v in asked["metadata"]["labels"].items() if not k.startswith("kueue.x-k8s.io/")}
    assert all(k.startswith("kueue.x-k8s.io/") for k in admitted["metadata"].get("annotations", {}))
    assert not admitted["spec"].get("schedulingGates")

    cluster.api.delete(f"/api/v1/namespaces/{users}/pods/student-1")
    expected = {"student-2": "running", "student-3": "running", "student-4": "gated"}
    kueue.wait(lambda: _states(cluster, users, names[1:]) == expected, WAIT, f"the first in line admitted: {expected}")
    kueue.wait(lambda: _get(cluster, users, "student-1") is None, WAIT, "the stopped server's pod gone")
    assert _states(cluster, users, names[1:]) == expected  # still: nobody was preempted to make room


def test_the_admission_policy_admits_exactly_the_queue_label_on_gpu_pods(cluster, tmp_path):
    """With the queue on, the chart's policy refuses a GPU pod of the hub without its team's queue label (it would
    hold a GPU Kueue does not count) and any other pod with one; the spawner's own pods pass."""
    import copy

    from .test_admission import HUB, dry_run, plain_namespace, refusal, render, wait_refused
    from .test_user_pod import manifests

    ns = plain_namespace(cluster, "queue-policy")
    name = f"{ns}-{RELEASE}-user-pods"
    try:
        for template in ("templates/hub/rbac.yaml", "templates/admission/policy.yaml"):
            # user servers (singleuser.namespace) in this namespace: the Role and the policy follow them here
            here = tmp_path / "here.yaml"
            here.write_text(yaml.safe_dump({"singleuser": {"namespace": ns}}))
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=render(cluster, ns, template, values=(EXAMPLE, here)))
        hub = cluster.service_account_api(ns, HUB)
        gpu, _ = manifests(ns, "local:student1", {"resource": "pytorch", "accelerator": "strix-halo"}, values=EXAMPLE)
        cpu, _ = manifests(ns, "local:student1", {"resource": "cpu-small"}, values=EXAMPLE)
        unqueued = copy.deepcopy(gpu)
        del unqueued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
        assert "teamhub rule queue:" in wait_refused(hub, ns, unqueued)
        other_line = copy.deepcopy(gpu)
        other_line["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-vision-lab"
        assert "teamhub rule queue:" in refusal(hub, ns, other_line)
        queued_cpu = copy.deepcopy(cpu)
        queued_cpu["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-cv-course"
        assert "teamhub rule queue:" in refusal(hub, ns, queued_cpu)
        dry_run(hub, ns, gpu)
        dry_run(hub, ns, cpu)
        path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{name}"
        cluster.plane.wait_until(lambda: "typeChecking" in cluster.api.get(path).get("status", {}), 30, "the type check")
        assert not cluster.api.get(path)["status"]["typeChecking"].get("expressionWarnings")
    finally:
        cluster.delete_namespace(ns)
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cluster.kubectl("delete", kind, name, "--ignore-not-found")
