"""Packing and headroom on a real control plane (issue 30).

The user scheduler is the tier's own kube-scheduler binary (the release `make setup` builds, the version the chart's
image is pinned to) run with exactly what the chart renders: its configuration, its command's flags and its
ServiceAccount's token, so its RBAC is the chart's. It places four CPU servers, created by the hub's ServiceAccount
through the admission policy as the hub builds them, on one node, where the default scheduler spreads the same four.
Every right it is granted is one Kubernetes' own system:kube-scheduler or system:volume-scheduler grants.

A user placeholder (the chart's Deployment, PriorityClass below every server) holds each GPU of a node kind; a real
server of that kind preempts one and runs at once, and the evicted placeholder waits for room again."""

from __future__ import annotations

import pytest
import yaml
from support import CONFIG, wait_for

from .chart import CHART, RELEASE, VALUES
from .controlplane import Component, free_port
from .test_admission import wait_refused
from .test_user_pod import data_volume, manifests

VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
SCHEDULER = f"{RELEASE}-user-scheduler"
HUB = f"{RELEASE}-hub"
PACKED = {"catalog": {"resources": {"cpu-small": {"userScheduler": True}}}}
STRIX_NODES = {"strix-halo-1", "strix-halo-2"}  # one GPU each (tests/cluster/course.py)
PLACEHOLDERS = {"scheduling": {"userPlaceholders": {"nodeKinds": {
    "strix": {"resource": "course-cv", "accelerator": "strix-halo", "replicas": len(STRIX_NODES)}}}}}


def render(cluster, namespace: str, overlay: dict, *templates) -> list[dict]:
    path = cluster.dir / f"overlay-{namespace}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    args = [a for v in (*VALUES, path) for a in ("-f", v)]
    shows = [a for t in templates for a in ("--show-only", t)]
    out = cluster.helm("helm3", "template", RELEASE, CHART, "-n", namespace, *args, "--kube-version", "1.37.2",
                       "--api-versions", VAP, *shows).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def apply(cluster, namespace: str, docs: list[dict]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def values_file(cluster, name: str, overlay: dict):
    values = yaml.safe_load((CONFIG / "values.yaml").read_text())
    for key, res in overlay.get("catalog", {}).get("resources", {}).items():
        values["catalog"]["resources"][key].update(res)
    path = cluster.dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def node_of(cluster, namespace: str, name: str, timeout: float = 60) -> str:
    """The node a pod is bound to, once it is (polled)."""
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    return wait_for(lambda: cluster.api.get(path)["spec"].get("nodeName"), f"{name} to be scheduled", timeout)


def start_servers(cluster, namespace: str, api, users: list, values, environ: dict) -> list[str]:
    """Pods (and home claims) exactly as the hub builds them for cpu-small, created one after another through
    `api`, each once the one before is placed (the order a class logging in makes)."""
    nodes = []
    for user in users:
        pod, pvc = manifests(namespace, user, {"resource": "cpu-small"}, values=values, environ=environ)
        api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
        api.create(f"/api/v1/namespaces/{namespace}/pods", pod)
        nodes.append(node_of(cluster, namespace, pod["metadata"]["name"]))
    return nodes


@pytest.fixture
def user_scheduler(cluster, namespace):
    """The chart's user-scheduler objects applied in `namespace`, and the tier's kube-scheduler run as the chart's
    Deployment runs it (its flags, its configuration file, its ServiceAccount), on loopback."""
    docs = render(cluster, namespace, PACKED, "templates/hub/rbac.yaml", "templates/admission/policy.yaml",
                  "templates/user-scheduler/rbac.yaml", "templates/user-scheduler/config.yaml",
                  "templates/user-scheduler/deployment.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    apply(cluster, namespace, [d for d in docs if d["kind"] != "Deployment"])
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == SCHEDULER)
                            ["data"]["config.yaml"])
    config["clientConnection"] = {"kubeconfig": str(cluster.service_account_kubeconfig(namespace, SCHEDULER))}
    workdir = cluster.dir / f"user-scheduler-{namespace}"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][0] == "kube-scheduler"
    flags = [f"--config={workdir / 'config.yaml'}" if f.startswith("--config=") else f for f in container["command"][1:]]
    # on this machine: loopback and a free port instead of the pod's 10259
    proc = Component(f"user-scheduler-{namespace}", ["kube-scheduler", *flags, "--bind-address=127.0.0.1",
                                                     f"--secure-port={free_port()}"], workdir)
    try:
        yield {"docs": docs, "proc": proc, "config": config}
    finally:
        proc.stop()
        for d in docs:
            if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                cluster.kubectl("delete", d["kind"].lower(), d["metadata"]["name"], "--ignore-not-found")
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cluster.kubectl("delete", kind, f"{namespace}-{RELEASE}-user-pods", "--ignore-not-found")


def test_the_user_scheduler_packs_four_cpu_servers_on_one_node_where_the_default_one_spreads_them(cluster, namespace,
                                                                                                   user_scheduler):
    cluster.top_up_volumes(free=10)
    hub = cluster.service_account_api(namespace, HUB)
    # the default scheduler, the catalog as shipped (created by the admin: the policy here says cpu-small is packed)
    spread = start_servers(cluster, namespace, cluster.api, [f"local:spread{i}" for i in range(4)], VALUES[0], {})
    assert len(set(spread)) > 1, spread
    cluster.kubectl("delete", "pods", "--all", "-n", namespace, "--grace-period=0", "--force", "--wait=true")
    # cpu-small with userScheduler: the hub names the chart's scheduler, the admission policy admits exactly that
    packed_values = values_file(cluster, f"packed-{namespace}", PACKED)
    packed = start_servers(cluster, namespace, hub, [f"local:packed{i}" for i in range(4)], packed_values,
                           {"TEAMHUB_USER_SCHEDULER": SCHEDULER})
    assert len(set(packed)) == 1, packed
    pods = cluster.kubectl_json("get", "pods", "-n", namespace)["items"]
    assert {p["spec"].get("schedulerName") for p in pods} == {SCHEDULER}
    # its leader holds the Lease the chart lets it write, and no other
    lease = cluster.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{SCHEDULER}")
    assert lease["spec"].get("holderIdentity"), lease
    user_scheduler["proc"].check_alive()


def test_a_resource_without_user_scheduler_may_not_name_it(cluster, namespace, user_scheduler):
    hub = cluster.service_account_api(namespace, HUB)
    pod, _ = manifests(namespace, "local:ada", {"resource": "cpu-large"})
    pod["spec"]["schedulerName"] = SCHEDULER
    # the policy's binding takes effect a moment after it is created (wait_refused polls until it does)
    assert "teamhub rule scheduling" in wait_refused(hub, namespace, pod)


def _grants(rules) -> set:
    return {(g, r, v) for rule in rules for g in rule.get("apiGroups", ()) for r in rule.get("resources", ())
            for v in rule.get("verbs", ())}


def test_every_right_of_the_user_scheduler_is_one_kubernetes_gives_its_own_scheduler(cluster, user_scheduler):
    own = set()
    for d in user_scheduler["docs"]:
        if d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"].endswith(SCHEDULER):
            own |= _grants(d["rules"])
    system = set()
    for name in ("system:kube-scheduler", "system:volume-scheduler"):
        system |= _grants(cluster.api.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")["rules"])
    assert own - system == set(), f"rights beyond Kubernetes' own scheduler: {sorted(own - system)}"
    # DRA since Kubernetes 1.36: the claim's allocation goes through resourceclaims/binding
    assert ("resource.k8s.io", "resourceclaims/binding", "update") in system & own


def test_a_placeholder_gives_way_to_a_real_server_which_runs_at_once(cluster, namespace):
    docs = render(cluster, namespace, PLACEHOLDERS, "templates/hub/rbac.yaml", "templates/user-placeholders/placeholders.yaml")
    classes = [d for d in docs if d["kind"] == "PriorityClass"]
    try:
        apply(cluster, namespace, docs)
        selector = "app.kubernetes.io/component=user-placeholder"

        def placeholders():
            return cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]

        cluster.plane.wait_until(lambda: {p["spec"].get("nodeName") for p in placeholders()
                                          if p["status"].get("phase") == "Running"} == STRIX_NODES, 60,
                                 "a placeholder running on each Strix Halo node")
        held = {p["metadata"]["name"] for p in placeholders()}
        for claim in ("imagenet-data", "course-materials"):
            cluster.api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", data_volume(claim))
        hub = cluster.service_account_api(namespace, HUB)
        pod, pvc = manifests(namespace, "local:alice", {"resource": "course-cv", "accelerator": "strix-halo"})
        hub.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
        hub.create(f"/api/v1/namespaces/{namespace}/pods", pod)
        path = f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}"
        cluster.plane.wait_until(lambda: cluster.api.get(path)["status"].get("phase") == "Running", 60,
                                 "the server to run in a placeholder's place")
        assert cluster.api.get(path)["spec"]["nodeName"] in STRIX_NODES
        now = placeholders()
        assert len(held - {p["metadata"]["name"] for p in now}) == 1  # exactly one gave way
        # its replacement waits for room: the signal a cluster autoscaler acts on before the next person comes
        cluster.plane.wait_until(lambda: any(c.get("reason") == "Unschedulable" for p in placeholders()
                                             for c in p["status"].get("conditions", ())), 60,
                                 "the evicted placeholder's replacement to wait for room")
    finally:
        for d in classes:
            cluster.kubectl("delete", "priorityclass", d["metadata"]["name"], "--ignore-not-found")
