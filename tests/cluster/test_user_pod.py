"""A person's server pod, exactly as the hub builds it (KubeSpawner's own get_pvc_manifest() and
get_pod_manifest() through teamhub's spawner), created with the hub's ServiceAccount token and the
chart's Role, in a namespace enforcing Pod Security "restricted"."""

from __future__ import annotations

import time

from unit.hubhelpers import pod_manifests as manifests  # noqa: F401  (the cluster tier's name for it)

from .chart import CHART, RELEASE, VALUES
from .controlplane import ApiError


class PodSecurityRefused(Exception):
    """The API server refused the pod for Pod Security: which must never happen to a pod the hub builds (issue 15 defect 1)."""


def apply_hub_rbac(cluster, namespace: str) -> None:
    """The hub's ServiceAccount, Role and RoleBinding as the chart renders them (nothing else)."""
    values = [a for v in VALUES for a in ("-f", v)]
    rendered = cluster.helm("helm3", "template", RELEASE, CHART, "-n", namespace, *values,
                            "--show-only", "templates/hub/rbac.yaml").stdout
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=rendered)


def data_volume(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}}


def test_user_pod_admitted_under_restricted(cluster, namespace):
    apply_hub_rbac(cluster, namespace)
    for claim in ("imagenet-data", "course-materials"):  # the catalog's data sets, made by the admin
        cluster.api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", data_volume(claim))
    hub = cluster.service_account_api(namespace, f"{RELEASE}-hub")
    pod, pvc = manifests(namespace, "local:alice", {"resource": "course-cv", "accelerator": "strix-halo"})

    hub.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
    try:
        hub.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    except ApiError as exc:
        if exc.status == 403 and "PodSecurity" in str(exc):
            raise PodSecurityRefused(str(exc)) from exc
        raise

    name = pod["metadata"]["name"]
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    deadline = time.monotonic() + 30
    while cluster.api.get(path)["status"].get("phase") != "Running":
        assert time.monotonic() < deadline, cluster.api.get(path)["status"]
        time.sleep(0.2)
    created = cluster.api.get(path)
    assert created["spec"]["nodeName"] in {"strix-halo-1", "strix-halo-2"}
    assert created["spec"]["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"
    container = created["spec"]["containers"][0]
    assert True in (created["spec"].get("securityContext", {}).get("runAsNonRoot"),
                    container.get("securityContext", {}).get("runAsNonRoot"))
    # the scheduler's binding is a create too (subresource "binding"); the pod's own create has none
    creates = cluster.audit_events(namespace=namespace, resource="pods", verb="create")
    event = [e for e in creates if not e["objectRef"].get("subresource")][-1]
    assert event["user"]["username"] == f"system:serviceaccount:{namespace}:{RELEASE}-hub"
    assert event["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "restricted:latest"
