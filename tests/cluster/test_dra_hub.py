"""Accelerators by Dynamic Resource Allocation (issue 27) through the real hub on the real control plane.

A module fixture stands in for the vendor's kubelet plugin: it adds kwok nodes and publishes their
ResourceSlices (driver gpu.amd.com, one pool per node), as the AMD DRA driver would:
  - dra-mi210-1: two whole MI210 GPUs;
  - dra-mi300x-1: one MI300X, published as the whole device or four CPX partitions, all consuming the GPU's
    shared counters (partitionable devices), so a whole-GPU claim and a partition exclude each other;
  - dra-w7900-1: one W7900 that allows several allocations, with 48Gi of consumable memory capacity;
  - dra-ext-1: one Radeon 8060S, served to an unchanged `amd.com/gpu: 1` pod through a DeviceClass with
    `extendedResourceName` (the cluster admin's, not the catalog's).
kube-scheduler allocates from these and kwok marks the pods Running. The chart's DeviceClasses,
ResourceClaimTemplates and admission policy are applied as rendered; the hub is hub.py's ClusterHub.

One hub per module; the tests run in file order and some use the servers earlier ones left running (their
docstrings say which)."""

from __future__ import annotations

import copy
import html

import pytest
import yaml
from support import run_teamhub, tree_env, wait_for

from .chart import VALUES
from .controlplane import ApiError
from .course import _node
from .hub import ClusterHub, people_overlay
from .test_admission import render
from .test_hub_starts import fails_fast, pods, spawn_outcome, start_from_launch_page

DRIVER = "gpu.amd.com"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"
CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
EXT_CLASS = "dra-test-radeon-ext"  # the cluster admin's DeviceClass mapping amd.com/gpu (not rendered by the chart)
NODES = {"dra-mi210-1": {"node-type": "dra"}, "dra-mi300x-1": {"node-type": "dra"}, "dra-w7900-1": {"node-type": "dra"},
         "dra-ext-1": {"node-type": "radeon-dra"}}

RESOURCE = "dra-notebook"
OVERLAY = {"catalog": {
    "deviceClasses": {
        "mi210": {"driver": DRIVER, "selectors": {"type": "amdgpu", "productName": "AMD Instinct MI210"},
                  "gpu": {"name": "MI210", "memory": "64Gi"}},
        "mi300x-whole": {"driver": DRIVER, "selectors": {"type": "amdgpu", "productName": "AMD Instinct MI300X"},
                         "gpu": {"name": "MI300X", "memory": "192Gi"}},
        "mi300x-cpx": {"driver": DRIVER, "selectors": {"type": "amdgpu-partition", "partitionProfile": "cpx"},
                       "gpu": {"name": "MI300X", "memory": "192Gi"}, "memory": "48Gi"},
        "w7900": {"driver": DRIVER, "selectors": {"type": "amdgpu", "productName": "AMD Radeon PRO W7900"},
                  "gpu": {"name": "W7900", "memory": "48Gi"}},
    },
    "accelerators": {
        "mi210": {"displayName": "AMD Instinct MI210", "devices": {"deviceClass": "mi210"}, "capacity": 2},
        "mi300x-whole": {"displayName": "MI300X (whole)", "devices": {"deviceClass": "mi300x-whole"}, "capacity": 1},
        "mi300x-cpx": {"displayName": "MI300X partition", "devices": {"deviceClass": "mi300x-cpx"}, "capacity": 4},
        "w7900-share": {"displayName": "W7900 share", "devices": {"deviceClass": "w7900", "capacity": {"memory": "24Gi"}},
                        "capacity": 2},
        "radeon-ext": {"displayName": "AMD Radeon 8060S (DRA)", "gpu": {"resource": "amd.com/gpu", "count": 1},
                       "nodeSelector": {"node-type": "radeon-dra"}},
    },
    "resources": {RESOURCE: {"displayName": "DRA notebook", "description": "A notebook on a DRA device", "category": "Basics",
                             "image": "scipy", "cpu": {"request": 1, "limit": 2}, "memory": {"request": "1Gi", "limit": "2Gi"},
                             "accelerators": ["mi210", "mi300x-whole", "mi300x-cpx", "w7900-share", "radeon-ext"]}},
    "teams": {"dra-course": {"resources": [RESOURCE]},
              "dra-quota": {"resources": [RESOURCE], "quota": {"maxGpus": 1}}}}}
PEOPLE = {**{f"s{i}": ["dra-course"] for i in range(1, 12)}, "q1": ["dra-quota"], "q2": ["dra-quota"], "q3": ["dra-quota"]}


def _attrs(**values) -> dict:
    return {k: {"string": v} for k, v in values.items()}


def _pool(node: str, count: int) -> dict:
    return {"name": node, "generation": 1, "resourceSliceCount": count}


def _slice(name: str, node: str, count: int, **spec) -> dict:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name},
            "spec": {"driver": DRIVER, "nodeName": node, "pool": _pool(node, count), **spec}}


def slices() -> list[dict]:
    """What the AMD driver's kubelet plugin would publish on the four nodes."""
    mi210 = [{"name": f"mi210-{i}", "attributes": _attrs(type="amdgpu", productName="AMD Instinct MI210", deviceID=f"mi210-{i}"),
              "capacity": {"memory": {"value": "64Gi"}}} for i in range(2)]
    # The MI300X: the whole device and its four CPX partitions all draw on the GPU's counters (192Gi of memory,
    # 8 XCDs), so the whole device takes everything and each partition a quarter.
    counters = [{"name": "mi300x-0", "counters": {"memory": {"value": "192Gi"}, "xcds": {"value": "8"}}}]
    whole = {"name": "mi300x-0", "attributes": _attrs(type="amdgpu", productName="AMD Instinct MI300X", deviceID="mi300x-0"),
             "capacity": {"memory": {"value": "192Gi"}},
             "consumesCounters": [{"counterSet": "mi300x-0", "counters": {"memory": {"value": "192Gi"}, "xcds": {"value": "8"}}}]}
    parts = [{"name": f"mi300x-0-cpx-{i}",
              "attributes": _attrs(type="amdgpu-partition", productName="AMD Instinct MI300X", partitionProfile="cpx",
                                   deviceID="mi300x-0"),
              "capacity": {"memory": {"value": "48Gi"}},
              "consumesCounters": [{"counterSet": "mi300x-0", "counters": {"memory": {"value": "48Gi"}, "xcds": {"value": "2"}}}]}
             for i in range(4)]
    w7900 = [{"name": "w7900-0", "allowMultipleAllocations": True,
              "attributes": _attrs(type="amdgpu", productName="AMD Radeon PRO W7900", deviceID="w7900-0"),
              "capacity": {"memory": {"value": "48Gi"}}}]
    radeon = [{"name": "radeon-0", "attributes": _attrs(type="amdgpu", productName="AMD Radeon 8060S", deviceID="radeon-0"),
               "capacity": {"memory": {"value": "96Gi"}}}]
    return [_slice("dra-mi210-1-gpus", "dra-mi210-1", 1, devices=mi210),
            _slice("dra-mi300x-1-counters", "dra-mi300x-1", 2, sharedCounters=counters),
            _slice("dra-mi300x-1-gpus", "dra-mi300x-1", 2, devices=[whole, *parts]),
            _slice("dra-w7900-1-gpus", "dra-w7900-1", 1, devices=w7900),
            _slice("dra-ext-1-gpus", "dra-ext-1", 1, devices=radeon)]


def ext_class() -> dict:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": EXT_CLASS},
            "spec": {"extendedResourceName": "amd.com/gpu",
                     "selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}" && '
                                                          f'device.attributes["{DRIVER}"].productName == "AMD Radeon 8060S"'}}]}}


@pytest.fixture(scope="module")
def dra(cluster, tmp_path_factory):
    """The DRA nodes and what their driver publishes, for this module only (removed afterwards, so the rest of
    the tier sees the course cluster of course.py)."""
    for name, labels in NODES.items():
        cluster.api.create("/api/v1/nodes", _node(name, labels, {"cpu": "32", "memory": "256Gi"}, []))
    cluster.plane.wait_until(lambda: cluster.ready_nodes() >= set(NODES), 60, "the DRA nodes")
    for name in NODES:
        cluster.give_address(name)
    for s in slices():
        cluster.api.create(SLICES, s)
    cluster.api.create(CLASSES, ext_class())
    stored = cluster.api.get(f"{SLICES}/dra-w7900-1-gpus")["spec"]["devices"][0]
    assert stored.get("allowMultipleAllocations") is True, f"consumable capacity is off on this API server: {stored}"
    yield cluster
    for s in slices():
        cluster.api.delete(f"{SLICES}/{s['metadata']['name']}")
    cluster.api.delete(f"{CLASSES}/{EXT_CLASS}")
    for name in NODES:
        cluster.api.delete(f"/api/v1/nodes/{name}")


@pytest.fixture(scope="module")
def hub(dra, shipped_venv, tmp_path_factory):
    cluster = dra
    ns = cluster.new_namespace("dra-hub")
    state = tmp_path_factory.mktemp("dra-hub")
    overlay = people_overlay(state / "overlay.yaml", PEOPLE, OVERLAY)
    # The chart's DeviceClasses and ResourceClaimTemplates, and its admission policy, as rendered for this catalog.
    values = (*VALUES, overlay)
    objects = render(cluster, ns, "templates/devices/claims.yaml", "templates/admission/policy.yaml", values=values)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=objects)
    h = ClusterHub(cluster, ns, shipped_venv, state, overlays=(overlay,))
    h.start()
    yield h
    h.stop()
    assert not h.servers.errors, h.servers.errors
    cluster.delete_namespace(ns)
    for doc in yaml.safe_load_all(objects):
        if doc and doc["kind"] in ("DeviceClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
            cluster.kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found")


def fields(kind: str) -> dict:
    return {"resource": RESOURCE, "accelerator": kind}


def claim_of(hub, pod: dict) -> dict:
    """The ResourceClaim the control plane made for the pod (from its template, or for its extended resource)."""
    status = pod["status"]
    name = next((c["resourceClaimName"] for c in status.get("resourceClaimStatuses", []) if c.get("resourceClaimName")), None)
    name = name or status.get("extendedResourceClaimStatus", {}).get("resourceClaimName")
    assert name, f"the pod has no claim: {status}"
    return hub.cluster.api.get(f"/apis/resource.k8s.io/v1/namespaces/{hub.namespace}/resourceclaims/{name}")


def allocated(claim: dict) -> list[dict]:
    return claim.get("status", {}).get("allocation", {}).get("devices", {}).get("results", [])


def start(hub, person: str, kind: str) -> tuple[dict, list[dict]]:
    """A start from the launch page that must become ready: the running pod and the devices its claim got."""
    user = f"local:{person}"
    client, response, _ = start_from_launch_page(hub, person, fields(kind))
    assert response.status_code == 302 and "/hub/spawn-pending/" in response.headers["location"], response.text[:500]
    assert spawn_outcome(hub, client, user, timeout=120).get("ready"), f"{person} on {kind}"
    (pod,) = pods(hub, user)
    return pod, allocated(claim_of(hub, pod))


def stop(hub, person: str) -> None:
    user = f"local:{person}"
    client = hub.login(person, f"{person}-demo-pass")
    r = hub.api(hub.token(client, user)).delete(f"/users/{user}/server")
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not pods(hub, user), f"the pod of {user} deleted")


def devices_of(results: list[dict]) -> list[tuple]:
    return [(r["driver"], r["pool"], r["device"]) for r in results]


def test_a_whole_gpu_start_runs_with_its_device_and_keeps_cpu_and_memory(hub):
    pod, results = start(hub, "s1", "mi210")
    assert devices_of(results) in ([(DRIVER, "dra-mi210-1", "mi210-0")], [(DRIVER, "dra-mi210-1", "mi210-1")]), results
    assert results[0]["request"] == "devices"
    spec = pod["spec"]
    assert spec["nodeName"] == "dra-mi210-1"
    assert spec["resourceClaims"] == [{"name": "teamhub-devices", "resourceClaimTemplateName": "teamhub-mi210"}]
    res = spec["containers"][0]["resources"]
    assert res["claims"] == [{"name": "teamhub-devices"}]
    assert res["requests"] == {"cpu": "1", "memory": str(2**30)} and res["limits"] == {"cpu": "2", "memory": str(2 * 2**30)}, res
    claim = claim_of(hub, pod)
    owner = claim["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", pod["metadata"]["name"], pod["metadata"]["uid"])


def test_two_students_share_one_gpu_by_capacity_and_a_third_waits_for_room(hub):
    """Two 24Gi shares fill the W7900's 48Gi: both run on the same device; a third share finds no room."""
    shares = []
    for person in ("s2", "s3"):
        pod, results = start(hub, person, "w7900-share")
        assert devices_of(results) == [(DRIVER, "dra-w7900-1", "w7900-0")], results
        assert results[0]["consumedCapacity"] == {"memory": "24Gi"}, results
        assert pod["spec"]["nodeName"] == "dra-w7900-1"
        shares.append(results[0].get("shareID"))
    assert None not in shares and shares[0] != shares[1], shares  # two allocations of one device
    fails_fast(hub, "s4", fields("w7900-share"), "All 2 W7900 share devices are in use right now")
    stop(hub, "s2")
    _, results = start(hub, "s4", "w7900-share")  # the freed share goes to the next start
    assert devices_of(results) == [(DRIVER, "dra-w7900-1", "w7900-0")]
    for person in ("s3", "s4"):
        stop(hub, person)


def test_a_whole_mi300x_and_a_partition_exclude_each_other_and_stopping_releases_the_gpu(hub):
    pod, results = start(hub, "s5", "mi300x-whole")
    assert devices_of(results) == [(DRIVER, "dra-mi300x-1", "mi300x-0")], results
    fails_fast(hub, "s6", fields("mi300x-cpx"), "All 4 MI300X partition devices are in use right now")
    claim = claim_of(hub, pod)["metadata"]["name"]
    stop(hub, "s5")
    # The whole GPU's claim goes with its pod (the garbage collector deletes it, the device is free once it is
    # gone): polled, then the next start gets a partition of the same GPU.
    path = f"/apis/resource.k8s.io/v1/namespaces/{hub.namespace}/resourceclaims/{claim}"
    wait_for(lambda: not hub.cluster.api.ok(path), f"the claim {claim} deleted with its pod")
    _, results = start(hub, "s6", "mi300x-cpx")
    assert devices_of(results)[0][:2] == (DRIVER, "dra-mi300x-1") and results[0]["device"].startswith("mi300x-0-cpx-"), results


def test_the_fifth_partition_fails_fast_and_a_whole_gpu_too(hub):
    """After the test above: s6 holds one partition; three more fill the MI300X."""
    held = set()
    for person in ("s6", "s7", "s8", "s9"):
        if person != "s6":
            start(hub, person, "mi300x-cpx")
        (pod,) = pods(hub, f"local:{person}")
        held.update(r["device"] for r in allocated(claim_of(hub, pod)))
    assert held == {f"mi300x-0-cpx-{i}" for i in range(4)}, held
    fails_fast(hub, "s10", fields("mi300x-cpx"), "All 4 MI300X partition devices are in use right now, so 'DRA notebook' "
                                                  "cannot start with it.")
    fails_fast(hub, "s5", fields("mi300x-whole"), "All 1 MI300X (whole) devices are in use right now")


@pytest.mark.parametrize("change", ["foreign-claim", "bigger-share"])
def test_a_pod_with_a_foreign_claim_or_a_bigger_share_is_refused_with_the_hubs_token(hub, change):
    """After the test above: s7's partition pod, sent again with the hub's ServiceAccount token. Unchanged it passes
    admission (and then exists already); naming s6's generated claim, or the whole GPU's template instead of
    the partition's, the admission policy refuses it."""
    (mine,) = pods(hub, "local:s7")
    (theirs,) = pods(hub, "local:s6")
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(mine["spec"]),
           "metadata": {k: v for k, v in mine["metadata"].items() if k in ("name", "labels", "annotations")}}
    spec = pod["spec"]
    spec.pop("nodeName", None)
    spec["tolerations"] = [t for t in spec.get("tolerations", []) if "tolerationSeconds" not in t]  # the defaulting plugin's
    api = hub.cluster.service_account_api(hub.namespace, "teamhub-hub")
    path = f"/api/v1/namespaces/{hub.namespace}/pods"
    with pytest.raises(ApiError) as same:
        api.create(path, pod)
    assert same.value.status == 409, same.value  # admitted; only the name is taken
    if change == "foreign-claim":
        spec["resourceClaims"] = [{"name": "teamhub-devices", "resourceClaimName": claim_of(hub, theirs)["metadata"]["name"]}]
    else:
        spec["resourceClaims"] = [{"name": "teamhub-devices", "resourceClaimTemplateName": "teamhub-mi300x-whole"}]
    with pytest.raises(ApiError) as refused:
        api.create(path, pod)
    assert refused.value.status == 403 and "teamhub rule devices" in str(refused.value), refused.value


def refused_by_quota(hub, person: str, kind: str) -> str:
    client = hub.login(person, f"{person}-demo-pass")
    r = hub.spawn_form(client, fields(kind))
    assert r.status_code in (403, 429), (r.status_code, r.text[:300])
    assert not pods(hub, f"local:{person}")
    return html.unescape(r.text)


def test_quota_counts_whole_and_shared_kinds_as_fractions_of_a_gpu(hub):
    """dra-quota may hold 1 GPU. A 24Gi share of the 48Gi W7900 is half of one: beside it a whole MI210 does not
    fit, a second share does, and then nothing more. The launch page says what each kind is."""
    client = hub.login("q1", "q1-demo-pass")
    page = html.unescape(client.get("/hub/spawn").text)
    assert "1/2 of a W7900 (24 GB)" in page and "1/4 of an MI300X (48 GB)" in page and "an MI210 (64 GB)" in page
    start(hub, "q1", "w7900-share")
    assert "uses 1/2 of its 1 GPUs; this environment needs 1 and only 1/2 is left" in refused_by_quota(hub, "q2", "mi210")
    _, results = start(hub, "q2", "w7900-share")
    assert devices_of(results) == [(DRIVER, "dra-w7900-1", "w7900-0")]
    assert "uses 1 of its 1 GPUs; this environment needs 1/2 and only 0 are left" in refused_by_quota(hub, "q3", "w7900-share")


def test_validate_cluster_counts_what_the_driver_publishes(hub):
    """`teamhub validate --cluster` against this cluster: the devices each DRA kind's class matches."""
    r = run_teamhub("validate", *VALUES, hub.state / "overlay.yaml", "--cluster", "--kubeconfig", hub.cluster.kubeconfig,
                    env=tree_env())
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    for line in ("devices published for mi210: 2 of DeviceClass teamhub-mi210",
                 "devices published for mi300x-cpx: 4 of DeviceClass teamhub-mi300x-cpx",
                 "devices published for mi300x-whole: 1 of DeviceClass teamhub-mi300x-whole",
                 "devices published for w7900-share: 1 of DeviceClass teamhub-w7900"):
        assert line in out, r.stdout
    assert not [x for x in out if x.startswith("warning: catalog.accelerators.")], r.stdout


def test_the_extended_resource_path_runs_an_unchanged_pod_on_a_dra_device(hub):
    """radeon-ext asks `amd.com/gpu: 1`; no node advertises it, but the admin's DeviceClass maps the name: the
    scheduler makes the pod's claim itself and records it in the pod's status."""
    pod, results = start(hub, "s11", "radeon-ext")
    spec = pod["spec"]
    assert "resourceClaims" not in spec and "claims" not in spec["containers"][0]["resources"], spec
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert spec["nodeName"] == "dra-ext-1"
    assert devices_of(results) == [(DRIVER, "dra-ext-1", "radeon-0")], results
