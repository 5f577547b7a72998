"""Accelerators by Dynamic Resource Allocation (issue 27) in the hub: validation sentences, the pod's claim
beside its CPU and memory, GPU visibility, and quotas counting devices."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import kubernetes_validate
import pytest
import yaml
from hubhelpers import configured, kube_spawner
from support import CONFIG
from teamhub.catalog import devices
from teamhub.catalog.access import Person
from teamhub.catalog.loader import load
from teamhub.catalog.model import gpu_number, gpu_text
from teamhub.hub import launchpage
from teamhub.hub.quota import Usage
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


def _one_gpu_team(tmp_path, people: int = 5):
    values = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    values["catalog"]["teams"]["ml-course"]["quota"] = {"maxGpus": 1}
    for i in range(2, people + 1):
        values["auth"]["local"]["users"][f"student{i}"] = dict(values["auth"]["local"]["users"]["student1"])
    path = tmp_path / "one-gpu.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return configured(path)


def test_quota_counts_a_partition_or_a_share_as_its_fraction_of_a_gpu(tmp_path):
    """ml-course may hold 1 GPU: a 12Gi share of a 48Gi W7900 and three CPX partitions of an MI300X (48 of 192Gi
    each) are 1/4 GPU each, so four fit and a fifth, or a whole GPU beside one of them, does not."""
    c = _one_gpu_team(tmp_path)
    kinds = ["gpu-share", "mi300x-quarter", "mi300x-quarter", "mi300x-quarter"]
    for i, kind in enumerate(kinds, start=1):
        sp = kube_spawner(c, f"local:student{i}")
        asyncio.run(sp.teamhub_apply({"resource": "pytorch", "accelerator": kind}))
        assert sp.teamhub_info["gpus"] == 0.25
    fifth = kube_spawner(c, "local:student5")
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(fifth.teamhub_apply({"resource": "pytorch", "accelerator": "mi300x-quarter"}))
    assert info.value.status_code == 403
    assert "uses 1 of its 1 GPUs; this environment needs 1/4 and only 0 are left" in info.value.log_message


def test_quota_counts_whole_and_shared_kinds_together(tmp_path):
    c = _one_gpu_team(tmp_path, 2)
    share = kube_spawner(c, "local:student1")
    asyncio.run(share.teamhub_apply({"resource": "pytorch", "accelerator": "gpu-share"}))
    whole = kube_spawner(c, "local:student2")
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(whole.teamhub_apply({"resource": "pytorch", "accelerator": "mi300x"}))
    assert "uses 1/4 of its 1 GPUs; this environment needs 1 and only 3/4 is left" in info.value.log_message
    assert share.teamhub.quota.usage("ml-course").gpus == 0.25


def test_a_share_counts_its_memory_over_the_whole_gpu_and_says_so():
    accs = load([EXAMPLE]).catalog.accelerators
    assert devices.text(accs["mi300x-quarter"].devices) == "1/4 of an MI300X (48 GB)"
    assert devices.text(accs["gpu-share"].devices) == "1/4 of a W7900 (12 GB)"
    assert devices.text(accs["mi300x"].devices) == "an MI300X (192 GB)"
    # firstAvailable counts the most any alternative may take: the driver's whole GPU, unknown size, is one
    assert devices.text(accs["partition-or-any"].devices) == "1/4 of an MI300X (48 GB), else 1 × gpu.amd.com"
    assert accs["partition-or-any"].devices.gpus == 1 and accs["mi300x-quarter"].devices.gpus == Fraction(1, 4)


def test_gpu_numbers_and_texts():
    assert [gpu_number(x) for x in (Fraction(1, 4), Fraction(2), 0.25, 1.0, 1 / 3)] == [0.25, 2, 0.25, 1, 1 / 3]
    assert isinstance(gpu_number(1.0), int)
    assert [gpu_text(x) for x in (Fraction(1, 4), 2, 0.75, Fraction(3, 2), 1 / 3, 0)] == ["1/4", "2", "3/4", "1.5", "1/3", "0"]


def test_the_launch_page_shows_the_share_and_the_quota_in_fractions():
    catalog = load([EXAMPLE]).catalog
    html = launchpage.render(catalog, Person("local:student1"), usage=lambda team: Usage(1, 0.25))
    assert "1/4 of an MI300X (48 GB)" in html and "1/4 of a W7900 (12 GB)" in html
    assert "1/4 of 8 used, 7.75 left" in html


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


def test_usage_records_and_metrics_carry_the_kind_and_its_share(tmp_path):
    """A quarter of a GPU for an hour is 0.25 GPU-hours: in the record (its accelerator kind and `gpus`), the
    running gauge, the GPU-seconds counter (also as a restarted hub restores it) and the totals."""
    from teamhub.usage import store
    from teamhub.usage.metrics import RecordsCollector
    from teamhub.usage.totals import Period

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert store.migrate(url) == store.MIGRATIONS[-1][0]
    s = store.Store(url)
    record = s.open(0.0, server="local:a/", person="local:a", team="ml-course", resource="pytorch",
                    accelerator="mi300x-quarter", gpus=0.25, gpu_kind=None, cpu=4.0, memory=None)
    collector = RecordsCollector()
    collector.store = s
    gauge = {tuple(m.labels.values()): m.value for f in collector.collect() if f.name == "teamhub_gpus_in_use" for m in f.samples}
    assert gauge == {("ml-course", "pytorch", "mi300x-quarter"): 0.25}
    s.close(record, 3600.0, "stopped")
    assert s.get(record)["accelerator"] == "mi300x-quarter" and s.get(record)["gpus"] == 0.25
    for ledger_store in (s, store.Store(url)):
        assert ledger_store.ledger.seconds()[("ml-course", "pytorch")] == (3600.0, 900.0)
    (row,) = s.totals(Period(0.0, 7200.0, 7200.0), ("team",))
    assert row["gpu_hours"] == 0.25


@pytest.mark.parametrize(("overlay", "expected"), [
    ("catalog: {deviceClasses: {mi300x-cpx: {memory: 48Gi, gpu: null}}}",
     "catalog.deviceClasses.mi300x-cpx.memory: memory is what one part of a GPU has"),
    ("catalog: {deviceClasses: {mi300x-cpx: {memory: 256Gi}}}",
     "catalog.deviceClasses.mi300x-cpx.memory: a part of 256Gi cannot be bigger than its whole GPU's 192Gi"),
    ("catalog: {accelerators: {gpu-share: {devices: {capacity: {memory: 64Gi}}}}}",
     "catalog.accelerators.gpu-share.devices.capacity.memory: a share of 64Gi is more than the 48Gi one device of "
     "'shared-gpu' has: no start could ever get it"),
])
def test_parts_and_shares_are_checked_against_their_gpu(tmp_path, overlay, expected):
    found = problems(tmp_path, overlay)
    assert any(expected in p for p in found), found


def _slice(driver: str, pool: str, devs: dict) -> dict:
    return {"spec": {"driver": driver, "pool": {"name": pool},
                     "devices": [{"name": n, "attributes": {k: {"string": v} for k, v in a.items()}} for n, a in devs.items()]}}


def test_validate_cluster_counts_the_published_devices_per_kind():
    """What `teamhub validate --cluster` prints, from DeviceClasses and ResourceSlices as the API returns them."""
    catalog = load([EXAMPLE]).catalog
    cpx = {"type": "amdgpu-partition", "partitionProfile": "cpx", "productName": "AMD Instinct MI300X"}
    slices = [_slice("gpu.amd.com", "node-1", {"gpu-0": {"type": "amdgpu", "productName": "AMD Instinct MI300X"},
                                               **{f"gpu-0-cpx-{i}": cpx for i in range(4)}}),
              _slice("gpu.amd.com", "node-2", {"gpu-0": {"gpu.amd.com/type": "amdgpu", "productName": "AMD Radeon PRO W7900"}})]
    classes = [{"metadata": {"name": n}} for n in ("teamhub-mi300x-whole", "teamhub-mi300x-cpx", "teamhub-shared-gpu", "gpu.amd.com")]
    assert devices.fullname({}, "teamhub") == "teamhub" and devices.fullname({}, "lab") == "lab-teamhub"
    lines, warnings = devices.published(catalog, "teamhub", classes, slices)
    assert lines == ["gpu-share: 1 of DeviceClass teamhub-shared-gpu (its cel not checked)",
                     "mi300x: 1 of DeviceClass teamhub-mi300x-whole",
                     "mi300x-quarter: 4 of DeviceClass teamhub-mi300x-cpx",
                     "partition-or-any: 4 of DeviceClass teamhub-mi300x-cpx, else 6 of DeviceClass gpu.amd.com"]
    assert warnings == []
    lines, warnings = devices.published(catalog, "teamhub", classes[:2], slices[:1])
    assert warnings == [
        "catalog.accelerators.gpu-share: DeviceClass teamhub-shared-gpu is not on the cluster yet (the chart renders it from "
        "catalog.deviceClasses.shared-gpu at helm upgrade)",
        "catalog.accelerators.gpu-share: no device published in the cluster's ResourceSlices matches it, so every start of "
        "this kind would wait for one",
        "catalog.accelerators.partition-or-any: DeviceClass gpu.amd.com does not exist on this cluster: no start of this "
        "kind can get a device (install the vendor's DRA driver, or name a class it installs)"]


def test_validate_cluster_without_a_cluster_says_so(tmp_path):
    from support import run_teamhub

    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    r = run_teamhub("validate", EXAMPLE, "--cluster", "--kubeconfig", config)
    assert r.returncode == 2 and "teamhub: cannot read the cluster: no usable kubeconfig" in r.stderr, (r.stdout, r.stderr)


def test_the_prepuller_reaches_the_nodes_a_dra_kind_may_run_on(tmp_path):
    """A DRA kind is placed by the scheduler (where a device is published), not by a node selector: its image is
    pulled on every node its tolerations allow; a kind with a nodeSelector (the driver's node label) narrows it."""
    from teamhub.catalog.placement import placements

    def group_of(catalog, ref):
        return next(g for g in placements(catalog) if ref in {i.ref for i in g.images})

    catalog = load([EXAMPLE]).catalog
    assert group_of(catalog, catalog.images["pytorch-rocm"].ref).terms == ()  # every node: the DRA kinds may run anywhere
    values = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for kind in ("mi300x", "mi300x-quarter", "gpu-share", "partition-or-any"):
        values["catalog"]["accelerators"][kind]["nodeSelector"] = {"feature.node.kubernetes.io/amd-gpu": "true"}
        values["catalog"]["accelerators"][kind]["tolerations"] = [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    path = tmp_path / "labelled.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    group = group_of(load([path]).catalog, catalog.images["pytorch-rocm"].ref)
    assert group.terms == ({"node-type": "strix-halo"}, {"feature.node.kubernetes.io/amd-gpu": "true"})
    assert group.tolerations == ({"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
