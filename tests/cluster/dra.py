"""What a DRA driver would publish on the tier's kwok nodes (issue 27): the test stands in for the vendor's kubelet
plugin by writing ResourceSlices itself (controlplane notes: kube-scheduler allocates from them, kwok runs the pod).

Three nodes of driver gpu.amd.com, one pool each:
  - dra-gpus:   two whole GPUs (AMD Radeon PRO W7900);
  - dra-mi300x: one MI300X, published as the whole device or four CPX partitions that consume its shared
                counter (a partitionable device: a whole GPU and a partition of it exclude each other);
  - dra-share:  one GPU that allows several allocations, its 48Gi of memory consumable by capacity.
"""

from __future__ import annotations

from .course import _node

DRIVER = "gpu.amd.com"
API = "/apis/resource.k8s.io/v1"
NODES = {"dra-gpus": {"node-type": "dra-gpus"}, "dra-mi300x": {"node-type": "dra-mi300x"}, "dra-share": {"node-type": "dra-share"}}
W7900 = "AMD Radeon PRO W7900"
MI300X = "AMD Instinct MI300X"
PARTITIONS = 4


def _attrs(**values) -> dict:
    return {k: ({"bool": v} if isinstance(v, bool) else {"int": v} if isinstance(v, int) else {"string": v}) for k, v in values.items()}


def _slice(node: str, suffix: str, count: int, **spec) -> dict:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": f"{node}-{DRIVER}-{suffix}"},
            "spec": {"driver": DRIVER, "nodeName": node, "pool": {"name": node, "generation": 1, "resourceSliceCount": count},
                     **spec}}


def slices() -> list[dict]:
    whole = [{"name": f"gpu-{i}", "attributes": _attrs(type="amdgpu", productName=W7900),
              "capacity": {"memory": {"value": "48Gi"}}} for i in range(2)]
    counters = [{"name": "mi300x-0", "counters": {"memory": {"value": "192Gi"}}}]
    mi300x = [{"name": "mi300x-0", "attributes": _attrs(type="amdgpu", productName=MI300X),
               "capacity": {"memory": {"value": "192Gi"}},
               "consumesCounters": [{"counterSet": "mi300x-0", "counters": {"memory": {"value": "192Gi"}}}]}]
    mi300x += [{"name": f"mi300x-0-cpx-{i}", "attributes": _attrs(type="amdgpu-partition", productName=MI300X, partitionProfile="cpx"),
                "capacity": {"memory": {"value": "48Gi"}},
                "consumesCounters": [{"counterSet": "mi300x-0", "counters": {"memory": {"value": "48Gi"}}}]}
               for i in range(PARTITIONS)]
    shared = [{"name": "share-0", "attributes": _attrs(type="amdgpu", productName=W7900), "allowMultipleAllocations": True,
               "capacity": {"memory": {"value": "48Gi"}}}]
    return [
        _slice("dra-gpus", "0", 1, devices=whole),
        _slice("dra-mi300x", "counters", 2, sharedCounters=counters),  # "only one of devices and sharedCounters"
        _slice("dra-mi300x", "devices", 2, devices=mi300x),
        _slice("dra-share", "0", 1, devices=shared),
    ]


def nodes() -> list[dict]:
    return [_node(name, labels, {"cpu": "16", "memory": "64Gi"}, []) for name, labels in NODES.items()]


def publish(api) -> None:
    for node in nodes():
        api.create("/api/v1/nodes", node)
    for s in slices():
        api.create(f"{API}/resourceslices", s)


def withdraw(api) -> None:
    for s in slices():
        api.delete(f"{API}/resourceslices/{s['metadata']['name']}")
    for node in nodes():
        api.delete(f"/api/v1/nodes/{node['metadata']['name']}")
