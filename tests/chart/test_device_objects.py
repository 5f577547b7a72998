"""One source of truth for accelerators by Dynamic Resource Allocation (issue 27): the DeviceClasses and
ResourceClaimTemplates the chart renders equal `teamhub.catalog.devices.objects` computed from the values the
hub reads (the rendered values Secret), for every values file with DRA kinds and a generated catalog (long names,
every selector type, capacity shares, firstAvailable, singleuser.namespace); every object is valid Kubernetes
1.34 and 1.37, and on an older cluster the chart refuses with a sentence."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from support import CONFIG
from teamhub.catalog import devices
from teamhub.catalog.loader import load, load_or_raise
from test_admission_params import files_for
from test_chart import DRA_OLDEST, KUBE_VERSIONS, VALUES_FILES, helm, render

API = devices.API_VERSION
WITH_DEVICES = [f for f in VALUES_FILES if (r := load(list(files_for(f)))).ok
                and (r.catalog.device_classes or any(a.devices for a in r.catalog.accelerators.values()))]


def ordered(objs: list) -> list:
    return sorted(objs, key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def unlabelled(obj: dict) -> dict:
    assert obj["metadata"].pop("labels")["app.kubernetes.io/component"] == "devices"
    return obj


def hub_catalog(tmp_path, docs: list):
    """The catalog the hub builds from the values Secret the chart rendered."""
    text = next(d["stringData"]["values.yaml"] for d in docs if d["kind"] == "Secret" and "values.yaml" in d.get("stringData", {}))
    (tmp_path / "hub-values.yaml").write_text(text, encoding="utf-8")
    return load_or_raise([tmp_path / "hub-values.yaml"]).catalog


def rendered(tmp_path, *values_files) -> tuple[list, object]:
    """(the DRA objects without the chart's labels, the catalog the hub reads) as the chart renders them."""
    docs = render("helm3", *values_files)
    return ordered([unlabelled(d) for d in docs if d["apiVersion"] == API]), hub_catalog(tmp_path, docs)


def test_there_is_an_example_with_whole_partition_and_shared_kinds():
    example = CONFIG / "examples" / "dra-accelerators.yaml"
    assert example in WITH_DEVICES
    kinds = load_or_raise([example]).catalog.accelerators
    alts = [a for k in kinds.values() if k.devices for a in k.devices.alternatives]
    assert any(a.capacity for a in alts) and any(k.devices and k.devices.first_available for k in kinds.values())
    assert any(k.gpu for k in kinds.values())  # an extended resource beside them, unchanged


@pytest.mark.parametrize("values", WITH_DEVICES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_chart_objects_equal_the_hubs(tmp_path, values):
    objs, catalog = rendered(tmp_path, *files_for(values))
    assert objs and objs == ordered(devices.objects(catalog, "t-teamhub", "lab"))


def generated() -> dict:
    classes = {
        "a-device-class-key-of-sixty-characters-" + "x" * 20: {"driver": "gpu.nvidia.com", "selectors": {"productName": "NVIDIA A100-SXM4-40GB"}},
        "mig": {"driver": "gpu.nvidia.com", "selectors": {"profile": "1g.10gb", "cudaComputeCapability": 8, "migCapable": True}},
        "amd": {"driver": "gpu.amd.com", "cel": 'device.attributes["gpu.amd.com"].family == "MI300"'},
    }
    accelerators = {
        "whole": {"displayName": "W", "devices": {"deviceClass": "a-device-class-key-of-sixty-characters-" + "x" * 20, "count": 2}},
        "mig": {"displayName": "M", "devices": {"deviceClass": "mig"}},
        "share": {"displayName": "S", "devices": {"deviceClass": "gpu.nvidia.com", "capacity": {"memory": 1073741824, "cores": "10"}}},
        "alt": {"displayName": "A", "devices": {"firstAvailable": [{"deviceClass": "mig", "count": 2},
                                                                    {"deviceClass": "amd", "capacity": {"memory": "48Gi"}},
                                                                    {"deviceClass": "gpu.amd.com"}]}},
        "plugin": {"displayName": "P", "gpu": {"resource": "amd.com/gpu", "count": 1}},
    }
    values = yaml.safe_load((CONFIG / "examples" / "dra-accelerators.yaml").read_text(encoding="utf-8"))
    values["catalog"].update(deviceClasses=classes, accelerators=accelerators)
    values["catalog"]["resources"]["pytorch"]["accelerators"] = sorted(accelerators)
    return {**values, "fullnameOverride": "a-release-name-that-is-forty-characters", "singleuser": {"namespace": "lab-users"}}


def test_chart_objects_equal_the_hubs_for_a_generated_catalog(tmp_path):
    values = tmp_path / "generated.yaml"
    values.write_text(yaml.safe_dump(generated()), encoding="utf-8")
    objs, catalog = rendered(tmp_path, values)
    assert objs == ordered(devices.objects(catalog, "a-release-name-that-is-forty-characters", "lab"))
    assert [o["kind"] for o in objs].count("ResourceClaimTemplate") == 4  # not the extended-resource kind
    assert {o["metadata"]["namespace"] for o in objs if o["kind"] == "ResourceClaimTemplate"} == {"lab-users"}
    assert all(len(o["metadata"]["name"]) <= 63 for o in objs if o["kind"] == "DeviceClass")
    for obj in objs:
        for version in (DRA_OLDEST, KUBE_VERSIONS[-1]):
            kubernetes_validate.validate(obj, version, strict=True)


def test_older_clusters_are_told_why(tmp_path):
    proc = helm("helm3", "template", "t", CONFIG.parent / "chart", "-f", CONFIG / "examples" / "dra-accelerators.yaml",
                "--kube-version", "1.33.0", check=False)
    assert proc.returncode != 0
    assert "needs resource.k8s.io/v1 (Kubernetes 1.34+); this cluster is v1.33.0" in proc.stderr


def test_nothing_without_dra_kinds():
    assert not [d for d in render("helm3", CONFIG / "values.yaml") if d["apiVersion"] == API]
