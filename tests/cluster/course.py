"""The cluster a course runs on, as kwok nodes, and the storage its PVCs bind to.

The GPU nodes are derived from config/values.yaml's accelerators, so they carry exactly the labels (the
accelerator's nodeSelector), GPU capacity (its gpu.resource) and taints (one per toleration) the catalog
places pods with. The nvidia-l40s accelerator deliberately has no node: "no node of that kind" is a case
the hub must recognise (issue 15, defect 2). Scheduling: 1 tainted node and 4 untainted ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from support import CONFIG

from .controlplane import FAKE_NODE, NODE_IP

VALUES = CONFIG / "values.yaml"
# accelerator key -> (number of nodes, GPUs per node, cpu, memory). CPU nodes come on top.
GPU_NODES = {"strix-halo": (2, 1, "16", "128Gi"), "mi300x": (1, 8, "192", "2Ti")}
CPU_NODES = (2, "16", "64Gi")
CPU_NODE_LABELS = {"node-type": "cpu"}
STORAGE_CLASS = "standard"
VOLUME_SIZE = "20Gi"


def _node(name: str, labels: dict, capacity: dict, taints: list) -> dict:
    capacity = {**capacity, "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {FAKE_NODE.split("=")[0]: FAKE_NODE.split("=")[1]},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "type": "kwok", **labels}},
        "spec": {"taints": taints} if taints else {},
        "status": {"capacity": capacity, "allocatable": capacity, "addresses": [{"type": "InternalIP", "address": NODE_IP}]},
    }


def taints_for(tolerations) -> list:
    """The taint each catalog toleration exists to tolerate."""
    return [{"key": t["key"], "effect": t.get("effect", "NoSchedule"), **({"value": t["value"]} if "value" in t else {})}
            for t in tolerations or ()]


def nodes(values: Path = VALUES) -> list[dict]:
    accelerators = yaml.safe_load(values.read_text())["catalog"]["accelerators"]
    out = []
    count, cpu, memory = CPU_NODES
    for i in range(1, count + 1):
        out.append(_node(f"cpu-{i}", CPU_NODE_LABELS, {"cpu": cpu, "memory": memory}, []))
    for key, (count, gpus, cpu, memory) in GPU_NODES.items():
        acc = accelerators[key]
        for i in range(1, count + 1):
            out.append(_node(f"{key}-{i}", dict(acc["nodeSelector"]),
                             {"cpu": cpu, "memory": memory, acc["gpu"]["resource"]: str(gpus)},
                             taints_for(acc.get("tolerations"))))
    return out


def storage_class() -> dict:
    # WaitForFirstConsumer, as local volumes are usually offered: the scheduler binds a claim while placing the
    # pod. With Immediate, a pod created a few ms after its new claim could see it unbound, and kube-scheduler
    # 1.37 then left it Pending until its 5-minute unschedulable flush (seen in the audit log: the claim was
    # bound 10 ms after the second attempt), hiding the real reason (no node of that kind) behind "unbound".
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Retain"}


def volume(name: str, path: Path) -> dict:
    """A pre-made PV for any PVC of the default class (nothing is ever written: kwok runs no containers)."""
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"teamhub-test/pool": "true"}},
            "spec": {"capacity": {"storage": VOLUME_SIZE}, "storageClassName": STORAGE_CLASS,
                     "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}}
