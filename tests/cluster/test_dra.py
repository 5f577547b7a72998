"""Accelerators by Dynamic Resource Allocation (issue 27) through the hub as it ships, on the real control plane:
kube-scheduler allocates from ResourceSlices the test publishes for kwok nodes (dra.py), the controller manager
makes each pod's claim from the chart's ResourceClaimTemplate, and the claim's status says which device a server
got. One hub per module; the tests run in order and give back what they hold.
"""

from __future__ import annotations

import html

import pytest
from support import CONFIG, wait_for
from teamhub.values.quantities import cpu_cores, memory_bytes

from . import dra
from .chart import CHART, RELEASE, VALUES
from .hub import ClusterHub, people_overlay
from .test_hub_starts import pods, spawn_outcome

PEOPLE = {f"p{i}": ["dra-team"] for i in range(1, 7)}
OVERLAY = {
    "catalog": {
        "deviceClasses": {
            "w7900": {"driver": dra.DRIVER, "selectors": {"type": "amdgpu", "productName": dra.W7900}},
            "mi300x-whole": {"driver": dra.DRIVER, "selectors": {"type": "amdgpu", "productName": dra.MI300X}},
            "mi300x-cpx": {"driver": dra.DRIVER, "selectors": {"type": "amdgpu-partition", "partitionProfile": "cpx"}},
        },
        "accelerators": {
            "dra-w7900": {"displayName": "Radeon PRO W7900", "devices": {"deviceClass": "w7900"}, "nodeSelector": {"node-type": "dra-gpus"}},
            "dra-mi300x": {"displayName": "MI300X", "devices": {"deviceClass": "mi300x-whole"}},
            "dra-cpx": {"displayName": "MI300X partition", "devices": {"deviceClass": "mi300x-cpx"}, "capacity": dra.PARTITIONS},
            "dra-share": {"displayName": "24 GB of a W7900", "devices": {"deviceClass": "w7900", "capacity": {"memory": "24Gi"}},
                          "nodeSelector": {"node-type": "dra-share"}},
        },
        "resources": {"dra-lab": {"displayName": "DRA lab", "image": "scipy", "cpu": {"request": 1},
                                  "memory": {"request": "1Gi", "limit": "2Gi"},
                                  "accelerators": ["dra-w7900", "dra-mi300x", "dra-cpx", "dra-share"]}},
        "teams": {"dra-team": {"resources": ["dra-lab"]}},
    },
    "singleuser": {"storage": {"type": "none"}},
}
DEVICES = "templates/devices/claims.yaml"


@pytest.fixture(scope="module")
def hub(cluster, shipped_venv, tmp_path_factory):
    ns = cluster.new_namespace("dra")
    state = tmp_path_factory.mktemp("dra")
    overlay = people_overlay(state / "overlay.yaml", PEOPLE, OVERLAY)
    values = [a for v in (*VALUES, overlay) for a in ("-f", v)]
    objects = cluster.helm("helm3", "template", RELEASE, CHART, "-n", ns, *values, "--show-only", DEVICES,
                           "--kube-version", "1.37.2").stdout
    dra.publish(cluster.api)
    wait_for(lambda: set(dra.NODES) <= cluster.ready_nodes(), "the DRA kwok nodes ready", 60)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=objects)
    h = ClusterHub(cluster, ns, shipped_venv, state, overlays=(overlay,))
    h.start()
    yield h
    h.stop()
    assert not h.servers.errors, h.servers.errors
    cluster.kubectl("delete", "-n", ns, "-f", "-", "--ignore-not-found", input=objects)
    cluster.delete_namespace(ns)
    dra.withdraw(cluster.api)


def user(person: str) -> str:
    return f"local:{person}"


def start(hub, person: str, kind: str) -> dict:
    """Start dra-lab with `kind` from the launch page: the progress stream's last event."""
    client = hub.login(person, f"{person}-demo-pass")
    response = hub.spawn_form(client, {"resource": "dra-lab", "accelerator": kind})
    assert response.status_code == 302, response.text[:500]
    return spawn_outcome(hub, client, user(person))


def claim_of(hub, person: str) -> dict:
    """The person's pod's claim, as the API server holds it (made by the control plane from the template)."""
    (pod,) = pods(hub, user(person))
    (status,) = pod["status"]["resourceClaimStatuses"]
    return hub.cluster.api.get(f"{dra.API}/namespaces/{hub.namespace}/resourceclaims/{status['resourceClaimName']}")


def devices_of(hub, person: str) -> list[tuple[str, str]]:
    results = claim_of(hub, person)["status"]["allocation"]["devices"]["results"]
    return [(r["pool"], r["device"]) for r in results]


def claims(hub) -> list[str]:
    return [c["metadata"]["name"] for c in hub.cluster.api.get(f"{dra.API}/namespaces/{hub.namespace}/resourceclaims")["items"]]


def running(hub, person: str, kind: str) -> None:
    event = start(hub, person, kind)
    assert event.get("ready"), event


def refused(hub, person: str, kind: str, sentence: str) -> None:
    """The start fails fast with `sentence`, and leaves no pod or claim behind."""
    event = start(hub, person, kind)
    assert event.get("failed"), event
    assert html.unescape(event["html_message"]).startswith(sentence), event
    wait_for(lambda: not pods(hub, user(person)), f"the pod of {person} deleted", 15)


def stop(hub, *people: str) -> None:
    for person in people:
        client = hub.login(person, f"{person}-demo-pass")
        api = hub.api(hub.token(client, user(person)))
        assert api.delete(f"/users/{user(person)}/server").status_code in (202, 204)
    for person in people:
        wait_for(lambda person=person: not pods(hub, user(person)), f"the pod of {person} gone", 30)
    wait_for(lambda: not claims(hub) or len(claims(hub)) == len(pods(hub)), "the stopped servers' claims gone with their pods", 30)


def test_a_whole_gpu_is_allocated_to_the_server_and_goes_with_its_pod(hub):
    running(hub, "p1", "dra-w7900")
    (pod,) = pods(hub, user("p1"))
    assert pod["spec"]["resourceClaims"] == [{"name": "teamhub-devices", "resourceClaimTemplateName": "teamhub-dra-w7900"}]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["claims"] == [{"name": "teamhub-devices"}]
    requests, limits = resources["requests"], resources["limits"]  # as the catalog says, beside the claim
    assert set(requests) == {"cpu", "memory"} and cpu_cores(requests["cpu"]) == 1 and memory_bytes(requests["memory"]) == 2**30
    assert set(limits) == {"memory"} and memory_bytes(limits["memory"]) == 2 * 2**30
    claim = claim_of(hub, "p1")
    assert [(o["kind"], o["name"]) for o in claim["metadata"]["ownerReferences"]] == [("Pod", pod["metadata"]["name"])]
    (device,) = devices_of(hub, "p1")
    assert device in {("dra-gpus", "gpu-0"), ("dra-gpus", "gpu-1")} and pod["spec"]["nodeName"] == "dra-gpus"
    stop(hub, "p1")
    assert not claims(hub)


def test_partitions_and_the_whole_gpu_exclude_each_other_and_a_freed_one_is_reused(hub):
    holders = ["p1", "p2", "p3", "p4"]
    for person in holders:
        running(hub, person, "dra-cpx")
    got = {d for p in holders for d in devices_of(hub, p)}
    assert got == {("dra-mi300x", f"mi300x-0-cpx-{i}") for i in range(dra.PARTITIONS)}
    refused(hub, "p5", "dra-cpx", f"All {dra.PARTITIONS} MI300X partition devices are in use right now")
    refused(hub, "p6", "dra-mi300x", "Every MI300X device is in use right now")  # its partitions are taken
    freed = devices_of(hub, "p1")
    stop(hub, "p1")
    running(hub, "p5", "dra-cpx")  # the next start gets the freed partition
    assert devices_of(hub, "p5") == freed
    stop(hub, "p2", "p3", "p4", "p5")
    running(hub, "p6", "dra-mi300x")
    assert devices_of(hub, "p6") == [("dra-mi300x", "mi300x-0")]
    refused(hub, "p1", "dra-cpx", f"All {dra.PARTITIONS} MI300X partition devices are in use right now")
    stop(hub, "p6")


def test_two_people_share_one_gpu_by_capacity(hub):
    running(hub, "p1", "dra-share")
    running(hub, "p2", "dra-share")
    assert devices_of(hub, "p1") == devices_of(hub, "p2") == [("dra-share", "share-0")]
    for person in ("p1", "p2"):
        (result,) = claim_of(hub, person)["status"]["allocation"]["devices"]["results"]
        assert result["consumedCapacity"] == {"memory": "24Gi"} and result.get("shareID")
    refused(hub, "p3", "dra-share", "Every 24 GB of a W7900 device is in use right now")
    stop(hub, "p1")
    running(hub, "p3", "dra-share")
    stop(hub, "p2", "p3")


def test_the_examples_objects_are_accepted_by_the_api_server(hub):
    """The API server compiles every DeviceClass selector (the catalog's equalities and the operator's `cel`) and
    checks the claim templates: the example's objects pass a server-side dry run."""
    example = CONFIG / "examples" / "dra-accelerators.yaml"
    objects = hub.cluster.helm("helm3", "template", RELEASE, CHART, "-n", hub.namespace, "-f", example,
                               "--show-only", DEVICES, "--kube-version", "1.37.2").stdout
    out = hub.cluster.kubectl("apply", "--dry-run=server", "-n", hub.namespace, "-f", "-", input=objects).stdout
    assert out.count("deviceclass.resource.k8s.io/") == 3 and out.count("resourceclaimtemplate.resource.k8s.io/") == 4, out
