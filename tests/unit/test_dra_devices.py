"""Accelerators by Dynamic Resource Allocation (issue 27) in the hub: validation sentences, the pod's claim
beside its CPU and memory, GPU visibility, and quotas counting devices."""

from __future__ import annotations

import asyncio

import kubernetes_validate
import pytest
import yaml
from hubhelpers import configured, kube_spawner
from support import CONFIG
from teamhub.catalog import devices
from teamhub.catalog.loader import load
from teamhub.values.devices import cel_problem
from test_pod_manifest import container, env_of, manifest
from tornado import web

EXAMPLE = CONFIG / "examples" / "dra-accelerators.yaml"


def problems(tmp_path, overlay: str) -> list[str]:
    extra = tmp_path / "extra.yaml"
    extra.write_text(overlay, encoding="utf-8")
    return [str(p) for p in load([EXAMPLE, extra]).problems]


@pytest.fixture
def c():
    return configured(EXAMPLE)


@pytest.mark.parametrize("kind", ["mi300x", "mi300x-quarter", "gpu-share", "partition-or-any"])
def test_a_dra_kind_claims_its_template_and_keeps_cpu_memory_and_limits(c, kind):
    pod = manifest(kube_spawner(c, "local:admin", admin=True), {"resource": "pytorch", "accelerator": kind})
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    assert pod["spec"]["resourceClaims"] == [{"name": "teamhub-devices", "resourceClaimTemplateName": f"teamhub-{kind}"}]
    res = container(pod)["resources"]
    assert res["claims"] == [{"name": "teamhub-devices"}]
    assert res["requests"] == {"cpu": 4.0, "memory": 16 * 2**30}
    assert res["limits"] == {"memory": 24 * 2**30}  # no extended resource: the device comes with the claim


def test_an_extended_resource_kind_is_unchanged_and_claims_nothing(c):
    sp = kube_spawner(c, "local:admin", admin=True)
    pod = manifest(sp, {"resource": "pytorch", "accelerator": "strix-halo"})
    assert "resourceClaims" not in pod["spec"] and "claims" not in container(pod)["resources"]
    assert container(pod)["resources"]["limits"]["amd.com/gpu"] == "1"
    # the same spawner, next start: a DRA kind; then a CPU server without any claim (clean slate)
    assert manifest(sp, {"resource": "pytorch", "accelerator": "mi300x"})["spec"]["resourceClaims"]
    cpu = manifest(sp, {"resource": "cpu-small"})
    assert "resourceClaims" not in cpu["spec"] and "claims" not in container(cpu)["resources"]


def test_visibility_hides_other_vendors_only_when_the_driver_is_known(c):
    sp = kube_spawner(c, "local:admin", admin=True)
    amd = env_of(manifest(sp, {"resource": "pytorch", "accelerator": "mi300x"}))
    assert amd["NVIDIA_VISIBLE_DEVICES"] == "none" and "ROCR_VISIBLE_DEVICES" not in amd and "CUDA_VISIBLE_DEVICES" not in amd
    launch = sp.teamhub_launch
    assert launch.device_vendor == "AMD"
    assert devices.vendor(sp.teamhub.catalog, devices.Devices((devices.Alternative("some-class"),))) is None


def test_quota_counts_devices(tmp_path):
    values = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    values["catalog"]["teams"]["ml-course"]["quota"] = {"maxGpus": 1}
    values["auth"]["local"]["users"]["student2"] = dict(values["auth"]["local"]["users"]["student1"])
    path = tmp_path / "one-gpu.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    c = configured(path)
    first = kube_spawner(c, "local:student1")
    asyncio.run(first.teamhub_apply({"resource": "pytorch", "accelerator": "gpu-share"}))
    assert first.teamhub_info["gpus"] == 1
    second = kube_spawner(c, "local:student2")
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(second.teamhub_apply({"resource": "pytorch", "accelerator": "mi300x-quarter"}))
    assert info.value.status_code == 403 and "uses 1 of its 1 GPUs" in info.value.log_message


def test_the_example_is_valid_without_warnings():
    checked = load([EXAMPLE])
    assert checked.ok and not checked.warnings, checked.problems


@pytest.mark.parametrize(("overlay", "expected"), [
    ("catalog: {deviceClasses: {mi300x-cpx: {driver: gpu.amd.com, cel: 'device.driver =='}}}",
     "dra-overlay.yaml:1: catalog.deviceClasses.mi300x-cpx.cel: the CEL expression does not compile: look near '==' (line 1, column 15)"),
    ("catalog: {deviceClasses: {mi300x-cpx: {driver: gpu.amd.com, cel: 'devices.driver == \"x\"'}}}",
     "catalog.deviceClasses.mi300x-cpx.cel: the CEL expression uses 'devices': a DeviceClass selector knows only 'device'"),
    ("catalog: {accelerators: {mi300x: {gpu: {resource: amd.com/gpu, count: 1}}}}",
     "catalog.accelerators.mi300x: an accelerator asks for its devices either as an extended resource (gpu) or by Dynamic "
     "Resource Allocation (devices), exactly one of the two"),
    ("catalog: {accelerators: {mi300x: {devices: {firstAvailable: [{deviceClass: mi300x-cpx}]}}}}",
     "catalog.accelerators.mi300x.devices: devices names either one deviceClass (with count and capacity) or a list of "
     "firstAvailable alternatives"),
    ("catalog: {accelerators: {gpu-share: {devices: {capacity: {memory: 12GB}}}}}",
     "catalog.accelerators.gpu-share.devices.capacity.memory: '12GB' is not a valid memory quantity"),
    ("catalog: {accelerators: {mi300x: {devices: {deviceClass: mi300x-hole}}}}",
     "warning: catalog.accelerators.mi300x.devices.deviceClass: 'mi300x-hole' is not a key of catalog.deviceClasses, so it "
     "must be a DeviceClass the cluster already has (did you mean 'mi300x-whole'?)"),
    ("catalog: {deviceClasses: {odd: {driver: gpu.amd.com, selectors: {productName: 'a\"b'}}}}",
     "catalog.deviceClasses.odd.selectors.productName"),
    ("queue: {enabled: true}\nsingleuser: {namespace: users}",
     "catalog.accelerators.mi300x.devices: with queue.enabled a kind cannot ask for devices by DRA yet"),
])
def test_validation_says_what_and_where(tmp_path, overlay, expected):
    extra = tmp_path / "dra-overlay.yaml"
    extra.write_text(overlay + "\n", encoding="utf-8")
    found = [str(p) for p in load([EXAMPLE, extra]).problems]
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("expression", [
    'device.driver == "gpu.amd.com" && device.attributes["gpu.amd.com"].productName == "MI300X"',
    'device.capacity["gpu.amd.com"].memory.compareTo(quantity("40Gi")) >= 0',
    '["a", "b"].exists(x, x == device.driver)',
])
def test_kubernetes_style_selectors_compile(expression):
    assert cel_problem(expression) is None


def test_every_generated_selector_compiles():
    classes = load([EXAMPLE]).catalog.device_classes
    for cls in classes.values():
        for expression in devices.expressions(cls):
            assert cel_problem(expression) is None, expression


def _unschedulable(message: str) -> dict:
    return {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}


# kube-scheduler v1.37's words when no device of the claim can be allocated (controlplane notes, cluster tier)
NO_DEVICE = ("0/7 nodes are available: 1 cannot allocate all claims, 6 node(s) didn't match Pod's node affinity/selector. "
             "preemption: 0/7 nodes are available: 7 Preemption is not helpful for scheduling.")


def test_no_free_device_fails_fast_with_the_kinds_count():
    from teamhub.hub import failfast

    ctx = failfast.Context(resource_name="PyTorch", accelerator_key="mi300x-quarter", accelerator_name="MI300X partition",
                           dra=True, device_total=4)
    verdict = failfast.classify_pod(_unschedulable(NO_DEVICE), ctx)
    assert verdict.fatal and verdict.message == ("All 4 MI300X partition devices are in use right now, so 'PyTorch' cannot "
                                                 "start with it. Try another accelerator or later.")
    unknown = failfast.classify_pod(_unschedulable(NO_DEVICE), failfast.Context(accelerator_name="Shared GPU", dra=True))
    assert unknown.message.startswith("Every Shared GPU device is in use right now")
    # with an autoscaler a node may come: wait; an extended-resource kind is not judged by claims
    assert failfast.classify_pod(_unschedulable(NO_DEVICE), failfast.Context(dra=True, autoscaler=True)) is None
    assert failfast.classify_pod(_unschedulable(NO_DEVICE), failfast.Context(accelerator_name="Strix")) is None
