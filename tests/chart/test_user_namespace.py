"""User servers in their own namespace (singleuser.namespace, issue 26): what concerns user pods follows them
there, and nothing of the hub, proxy or pullers does (Kueue's pod webhook fails closed in the namespace it
manages). Without the value every object renders as before: no object names a namespace. The NetworkPolicies'
reach across the two namespaces is judged by NCA in test_network_policy.py ("users-apart")."""

from __future__ import annotations

import pytest
from support import CONFIG
from test_chart import default_render, render, validate_all, write_values

USERS = "lab-users"  # render() installs into "lab"
QUEUE_EXAMPLE = CONFIG / "examples" / "gpu-queue.yaml"
VAP = ("--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")  # the policy where it is served
PULL = {"imagePullSecret": {"create": True, "registry": "registry.example.org", "username": "u", "password": "p"}}


def _apart(tmp_path, *extra, values=CONFIG / "values.yaml") -> list[dict]:
    overlay = write_values(tmp_path, "apart", {"singleuser": {"namespace": USERS}, **PULL})
    return render("helm3", values, overlay, *extra, extra=VAP)


def _where(docs: list[dict]) -> dict:
    """(kind, name) -> the namespace the object names, or None (the release's)."""
    return {(d["kind"], d["metadata"]["name"]): d["metadata"].get("namespace") for d in docs}


def _pods_of_the_release(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "DaemonSet", "Job", "StatefulSet", "Pod")]


def test_without_the_value_no_object_names_a_namespace():
    docs = default_render("helm3")
    assert not [k for k, ns in _where(docs).items() if ns], "objects would leave the release namespace"


def test_the_hubs_rights_live_beside_the_user_servers(tmp_path):
    docs = _apart(tmp_path)
    where = _where(docs)
    assert where[("Role", "t-teamhub-hub")] == USERS and where[("RoleBinding", "t-teamhub-hub")] == USERS
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "t-teamhub-hub")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "t-teamhub-hub", "namespace": "lab"}]
    assert where[("ServiceAccount", "t-teamhub-hub")] is None  # the hub itself stays in the release namespace
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "t-teamhub-hub")
    granted = {r for rule in role["rules"] for r in rule["resources"]}
    assert granted == {"pods", "persistentvolumeclaims", "events"}
    validate_all([d for d in docs if not d["apiVersion"].startswith("admissionregistration")])  # 1.28 has no policy schema


def test_hub_proxy_and_pullers_never_land_in_the_user_namespace(tmp_path):
    for values in (CONFIG / "values.yaml", QUEUE_EXAMPLE):
        docs = _apart(tmp_path, values=values)
        workloads = _pods_of_the_release(docs)
        assert {d["kind"] for d in workloads} >= {"Deployment", "DaemonSet"}
        assert not [d["metadata"]["name"] for d in workloads if d["metadata"].get("namespace")]
        assert not [d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim" and d["metadata"].get("namespace")]


def test_only_the_user_servers_policy_lives_in_the_user_namespace(tmp_path):
    docs = _apart(tmp_path)
    policies = {d["metadata"]["name"]: d["metadata"].get("namespace") for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies.pop("t-teamhub-singleuser") == USERS
    assert policies and not [n for n, ns in policies.items() if ns], policies


def test_the_admission_policy_watches_the_user_namespace_with_its_parameters_beside_the_hub(tmp_path):
    docs = _apart(tmp_path)
    policy = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")
    binding = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding")
    selector = {"matchLabels": {"kubernetes.io/metadata.name": USERS}}
    assert policy["spec"]["matchConstraints"]["namespaceSelector"] == selector
    assert binding["spec"]["matchResources"]["namespaceSelector"] == selector
    # the parameters stay where the hub cannot write them either: the release namespace, named explicitly
    assert binding["spec"]["paramRef"]["namespace"] == "lab"
    assert _where(docs)[("ConfigMap", "t-teamhub-admission")] is None
    assert "system:serviceaccount:lab:t-teamhub-hub" in policy["spec"]["matchConditions"][0]["expression"]


def test_the_image_pull_secret_is_in_both_namespaces(tmp_path):
    docs = _apart(tmp_path)
    secrets = [d for d in docs if d["kind"] == "Secret" and d["type"] == "kubernetes.io/dockerconfigjson"]
    assert sorted(d["metadata"].get("namespace") or "" for d in secrets) == ["", USERS]
    assert secrets[0]["data"] == secrets[1]["data"]


@pytest.mark.parametrize("apart", [False, True])
def test_user_servers_reach_the_hub_by_a_name_their_namespace_resolves(tmp_path, apart):
    docs = _apart(tmp_path) if apart else list(default_render("helm3"))
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-teamhub-hub")
    env = {e["name"]: e.get("value") for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TEAMHUB_HUB_CONNECT_URL"] == ("http://t-teamhub-hub.lab:8081" if apart else "http://t-teamhub-hub:8081")


def test_with_the_queue_the_hub_reads_only_its_teams_places_in_line(tmp_path):
    docs = render("helm3", QUEUE_EXAMPLE, extra=VAP)
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "t-teamhub-hub")
    assert role["metadata"]["namespace"] == "teamhub-users"  # the example's singleuser.namespace
    visibility = [r for r in role["rules"] if r["apiGroups"] == ["visibility.kueue.x-k8s.io"]]
    assert visibility == [{"apiGroups": ["visibility.kueue.x-k8s.io"], "resources": ["localqueues/pendingworkloads"],
                           "resourceNames": ["team-cv-course", "team-everyone", "team-vision-lab"], "verbs": ["get"]}]
    queues = sorted(d["metadata"]["name"] for d in render("helm3", QUEUE_EXAMPLE, extra=("--api-versions", "kueue.x-k8s.io/v1beta2"))
                    if d["kind"] == "LocalQueue")
    assert queues == visibility[0]["resourceNames"]  # exactly the LocalQueues the chart renders
