"""Helm 3 and Helm 4 install the chart on a real API server, in a namespace enforcing Pod Security
"restricted": what the operator sees (the release, no warnings), what the API admitted (every pod create,
from the audit log), where the prepull DaemonSets landed, and what an uninstall leaves behind."""

from __future__ import annotations

import base64
import time

import pytest
from teamhub.catalog.access import access_of
from teamhub.catalog.loader import load_or_raise
from teamhub.catalog.placement import build_launch

from .chart import RELEASE, VALUES, install, status
from .watch import Recorder

HELMS = ("helm3", "helm4")
COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="module", params=HELMS)
def release(request, cluster):
    """One install per Helm major, recorded: its pods and Jobs as they came and went."""
    which = request.param
    ns = cluster.new_namespace(f"release-{which}")
    paths = [f"/api/v1/namespaces/{ns}/pods", f"/apis/batch/v1/namespaces/{ns}/jobs"]
    with Recorder(cluster.api, paths) as rec:
        proc = install(cluster, which, ns)
    assert not rec.errors, rec.errors
    yield {"which": which, "ns": ns, "proc": proc, "pods": rec.seen[paths[0]], "jobs": rec.seen[paths[1]]}
    cluster.delete_namespace(ns)


def test_release_is_deployed_without_warnings(cluster, release):
    assert status(cluster, release["which"], release["ns"])["info"]["status"] == "deployed"
    output = release["proc"].stdout + release["proc"].stderr
    assert "podsecurity" not in output.lower() and "warning" not in output.lower(), output


def test_every_workload_admitted_under_restricted(cluster, release):
    ns = release["ns"]
    creates = cluster.audit_events(namespace=ns, resource="pods", verb="create")
    created = [e for e in creates if not e["objectRef"].get("subresource")]
    assert created, "no pod was created"
    for e in created:
        annotations = e.get("annotations", {})
        who = f"{e['user']['username']} creating {e['objectRef'].get('name') or 'a pod'}"
        assert e["responseStatus"]["code"] == 201, f"{who}: {e['responseStatus']}"
        assert annotations.get("pod-security.kubernetes.io/enforce-policy") == "restricted:latest", who
        assert "pod-security.kubernetes.io/audit-violations" not in annotations, f"{who}: {annotations}"
    # Every kind of workload the chart has made it to Running (or, for the hook Job, Succeeded).
    components = {}
    for versions in release["pods"].values():
        last = versions[-1]
        components.setdefault(last["metadata"]["labels"].get(COMPONENT), set()).add(last["status"].get("phase"))
    assert set(components) == {"hub", "proxy", "continuous-puller", "hook-puller", "prepull-awaiter", "upgrade-check"}, components
    refused = [e for e in cluster.kubectl_json("get", "events", "-n", ns)["items"] if e["reason"] == "FailedCreate"]
    assert not refused, [e["message"] for e in refused]
    deployments = cluster.kubectl_json("get", "deployments", "-n", ns)["items"]
    assert {d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments} == \
        {f"{RELEASE}-hub": 1, f"{RELEASE}-proxy": 1}


# --- prepull: where the catalog says each image runs ----------------------------------------------
def _expected_nodes(cluster) -> dict:
    """image ref -> the nodes a user pod of that image can run on, by the hub's own placement of
    every resource (and accelerator) of the catalog; images with prePull: false are left out."""
    catalog = load_or_raise([VALUES[0]]).catalog
    access = access_of(catalog, (), admin=True)
    nodes = cluster.api.get("/api/v1/nodes")["items"]
    out: dict = {}
    for resource in catalog.resources.values():
        for acc in resource.accelerators or (None,):
            launch = build_launch(catalog, resource, catalog.accelerators[acc] if acc else None, 60, access)
            if launch.image.pre_pull:
                fits = {n["metadata"]["name"] for n in nodes if _fits(n, launch.node_selector, launch.tolerations)}
                out.setdefault(launch.image.ref, set()).update(fits)
    return out


def _fits(node: dict, selector, tolerations) -> bool:
    labels = node["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    for taint in node["spec"].get("taints", []):
        if taint["effect"] in ("NoSchedule", "NoExecute") and not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(tol, taint) -> bool:
    key_ok = tol.get("key") == taint["key"] or (not tol.get("key") and tol.get("operator") == "Exists")
    value_ok = tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", "")
    return key_ok and value_ok and tol.get("effect") in (None, "", taint["effect"])


def _pulled_where(pods) -> dict:
    """image ref -> the nodes a puller pod pulling it was bound to."""
    out: dict = {}
    for pod in pods:
        node = pod["spec"].get("nodeName")
        for c in pod["spec"].get("initContainers", []):
            if node:
                out.setdefault(c["image"], set()).add(node)
    return out


def _bound(versions) -> dict:
    """The last version of a pod that shows its node, else its last version."""
    return next((v for v in reversed(versions) if v["spec"].get("nodeName")), versions[-1])


def test_prepull_lands_where_the_catalog_places_each_image(cluster, release):
    expected = {ref: nodes for ref, nodes in _expected_nodes(cluster).items() if nodes}
    # A readable anchor for the oracle: the gfx1151 build goes only to the Strix Halo nodes.
    assert expected["ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2-gfx1151"] == {"strix-halo-1", "strix-halo-2"}
    pods = [_bound(v) for v in release["pods"].values()]
    for component in ("continuous-puller", "hook-puller"):
        mine = [p for p in pods if p["metadata"]["labels"].get(COMPONENT) == component]
        assert _pulled_where(mine) == expected, component
    # An image with no node to run on still has its (empty) DaemonSet, ready for a node that joins.
    daemonsets = cluster.kubectl_json("get", "daemonsets", "-n", release["ns"])["items"]
    images = {c["image"]: d["status"]["desiredNumberScheduled"]
              for d in daemonsets for c in d["spec"]["template"]["spec"]["initContainers"]}
    assert images["ghcr.io/example-university/pytorch-cuda:2.5-cuda12.4"] == 0
    assert set(images) == set(_expected_nodes(cluster))


def test_prepull_awaiter_job_finished(cluster, release):
    jobs = {name: versions for name, versions in release["jobs"].items() if name.endswith("-prepull-awaiter")}
    assert list(jobs) == [f"{RELEASE}-prepull-awaiter"], list(release["jobs"])
    (versions,) = jobs.values()
    conditions = [c for v in versions for c in v.get("status", {}).get("conditions", [])]
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in conditions), conditions
    args = versions[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    hook_sets = {n for n, v in release["pods"].items() if v[-1]["metadata"]["labels"].get(COMPONENT) == "hook-puller"}
    assert args[:2] == ["teamhub", "prepull-await"] and hook_sets
    # Helm deleted the hook objects once they succeeded.
    assert not cluster.kubectl("get", "jobs,daemonsets", "-n", release["ns"], "-l", f"{COMPONENT} in (prepull-awaiter,hook-puller)",
                               "-o", "name").stdout.strip()


@pytest.mark.parametrize("which", HELMS)
def test_uninstall_keeps_database_and_generated_secrets(cluster, namespace, which):
    install(cluster, which, namespace)
    secret_name, pvc_name = f"{RELEASE}-secrets", f"{RELEASE}-hub-db"
    before = cluster.kubectl_json("get", "secret", secret_name, "-n", namespace)["data"]
    assert set(before) == {"proxy-token", "cookie-secret", "crypt-key", "metrics-token"}
    assert all(len(base64.b64decode(v)) >= 32 for v in before.values())
    pvc = cluster.kubectl_json("get", "pvc", pvc_name, "-n", namespace)
    assert pvc["status"]["phase"] == "Bound"

    cluster.helm(which, "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout=2m")
    kept = sorted([f"persistentvolumeclaim/{pvc_name}", f"secret/{secret_name}"])

    def left() -> list:  # pods of deleted workloads go a moment later, through the garbage collector
        kinds = "all,configmaps,secrets,pvc,serviceaccounts,roles,rolebindings,networkpolicies,poddisruptionbudgets"
        return sorted(cluster.kubectl("get", kinds, "-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}",
                                      "-o", "name").stdout.split())

    deadline = time.monotonic() + 30
    while left() != kept and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left() == kept
    assert cluster.kubectl_json("get", "secret", secret_name, "-n", namespace)["data"] == before
    after = cluster.kubectl_json("get", "pvc", pvc_name, "-n", namespace)
    assert after["metadata"]["uid"] == pvc["metadata"]["uid"] and after["spec"]["volumeName"] == pvc["spec"]["volumeName"]
