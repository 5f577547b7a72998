"""The tier's own ground: the control plane is the pinned, stamped Kubernetes; the kwok nodes model the
course cluster of config/values.yaml; "restricted" is really enforced; PVCs bind; a ServiceAccount's
kubeconfig has exactly that account's rights."""

from __future__ import annotations

import re

import pytest
from support import ROOT

from .controlplane import ApiError

PINNED = re.search(r"^KUBERNETES_VERSION=(\S+)$", (ROOT / "scripts" / "setup.sh").read_text(), re.M).group(1)


def test_server_and_kubectl_report_the_pinned_version(cluster):
    # Unstamped builds report v0.0.0-master+$Format:%H$, which fails Helm's kubeVersion checks.
    versions = cluster.kubectl_json("version")
    assert versions["serverVersion"]["gitVersion"] == PINNED
    assert versions["clientVersion"]["gitVersion"] == PINNED
    major, minor = PINNED.lstrip("v").split(".")[:2]
    assert (versions["serverVersion"]["major"], versions["serverVersion"]["minor"]) == (major, minor)


def test_nodes_model_the_course_cluster(cluster):
    nodes = {n["metadata"]["name"]: n for n in cluster.api.get("/api/v1/nodes")["items"]}
    assert cluster.ready_nodes() == set(nodes) == {"cpu-1", "cpu-2", "strix-halo-1", "strix-halo-2", "mi300x-1"}
    types = {name: n["metadata"]["labels"]["node-type"] for name, n in nodes.items()}
    assert types == {"cpu-1": "cpu", "cpu-2": "cpu", "strix-halo-1": "strix-halo", "strix-halo-2": "strix-halo",
                     "mi300x-1": "mi300x"}
    gpus = {name: n["status"]["allocatable"].get("amd.com/gpu") for name, n in nodes.items()}
    assert gpus == {"cpu-1": None, "cpu-2": None, "strix-halo-1": "1", "strix-halo-2": "1", "mi300x-1": "8"}
    taints = {name: n["spec"].get("taints", []) for name, n in nodes.items()}
    assert taints.pop("mi300x-1") == [{"key": "amd.com/gpu", "effect": "NoSchedule"}]
    assert not any(taints.values())  # not even node.kubernetes.io/not-ready: kwok keeps them Ready


def test_restricted_is_enforced(cluster, namespace):
    root_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "as-root"},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    with pytest.raises(ApiError) as refused:
        cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", root_pod)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in str(refused.value)


def test_claim_binds_through_the_default_class(cluster, namespace):
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}
    cluster.api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", claim)
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/home"
    assert cluster.api.get(path)["status"].get("phase") == "Pending"  # the class binds at the first consumer
    consumer = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "consumer"},
                "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                         "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
                         "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]}}
    cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", consumer)
    cluster.plane.wait_until(lambda: cluster.api.get(path)["status"].get("phase") == "Bound", 30, "the claim's binding")
    assert cluster.api.get(path)["spec"]["storageClassName"] == "standard"


def test_service_account_kubeconfig_has_only_its_rights(cluster, namespace):
    config = cluster.service_account_kubeconfig(namespace, "default")
    whoami = cluster.kubectl_json("auth", "whoami", kubeconfig_path=config)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"
    denied = cluster.kubectl("get", "pods", "-n", namespace, kubeconfig_path=config, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    with pytest.raises(ApiError) as refused:
        cluster.service_account_api(namespace, "default").get(f"/api/v1/namespaces/{namespace}/secrets")
    assert refused.value.status == 403
