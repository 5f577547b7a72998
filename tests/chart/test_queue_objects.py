"""One source of truth for the GPU queue (issue 26): the Kueue objects the chart renders equal
`teamhub.catalog.queue.objects` computed from the values the hub reads (the rendered values Secret), for every
values file with the queue on and a generated catalog with long names, several device types and weights; and
nothing is rendered where the cluster does not serve kueue.x-k8s.io/v1beta2 or the queue is off."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from support import CONFIG, TOOLS
from teamhub.catalog import queue
from teamhub.catalog.loader import load, load_or_raise
from test_admission_params import files_for
from test_chart import VALUES_FILES, helm, render

KUEUE = "kueue.x-k8s.io/v1beta2"
SHOW = ("templates/queue/kueue.yaml", "templates/hub/values-secret.yaml")
QUEUED = [f for f in VALUES_FILES if (r := load(list(files_for(f)))).ok and r.catalog.queue.enabled]


def ordered(objs: list) -> list:
    """Helm sorts what it renders by kind; the comparison does not depend on that order."""
    return sorted(objs, key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def rendered(tmp_path, *values_files, api=True) -> tuple[list, object]:
    """(Kueue's objects without the chart's labels, the catalog the hub reads) as the chart renders them."""
    extra = ["--api-versions", KUEUE] if api else []
    docs = render("helm3", *values_files, extra=extra)
    secret = next(d for d in docs if d["kind"] == "Secret" and "values.yaml" in d.get("stringData", {}))
    hub_values = tmp_path / "hub-values.yaml"
    hub_values.write_text(secret["stringData"]["values.yaml"], encoding="utf-8")
    objs = [d for d in docs if d["apiVersion"] == KUEUE]
    for obj in objs:
        assert obj["metadata"].pop("labels")["app.kubernetes.io/component"] == "queue"
    return ordered(objs), load_or_raise([hub_values]).catalog


def test_there_is_an_example_with_the_queue_on():
    assert CONFIG / "examples" / "gpu-queue.yaml" in QUEUED


@pytest.mark.parametrize("values", QUEUED, ids=lambda p: str(p.relative_to(CONFIG)))
def test_chart_objects_equal_the_hubs(tmp_path, values):
    objs, catalog = rendered(tmp_path, *files_for(values))
    assert objs and objs == ordered(queue.objects(catalog, "t-teamhub"))


def generated() -> dict:
    """Long names (hashed to 63 characters), two device types, weights, shares with and without max."""
    accelerators = {
        "strix": {"displayName": "Strix", "gpu": {"resource": "amd.com/gpu", "count": 1},
                  "nodeSelector": {"node-type": "strix"}, "capacity": 6},
        "mi300x": {"displayName": "MI300X", "gpu": {"resource": "amd.com/gpu", "count": 2},
                   "nodeSelector": {"node-type": "mi300x", "zone": "a"}, "capacity": 16},
        "l40s": {"displayName": "L40S", "gpu": {"resource": "nvidia.com/gpu", "count": 1},
                 "nodeSelector": {"node-type": "l40s"}, "capacity": 3},
    }
    teams = {"everyone": {"resources": ["cpu"]}}
    for i in range(12):
        shares = {"strix": {"guaranteed": i % 2}, "mi300x": {"guaranteed": i % 3, "max": 4 + i % 5}}
        if i % 4 == 0:
            shares["l40s"] = {"max": 1 + i % 3}
        teams[f"team-{i}" + ("-" + "x" * 40 if i % 5 == 0 else "")] = {
            "resources": ["gpu", "cpu"], "users": ["local:a"],
            "queue": {"weight": [1, 0.5, 2, 1.25][i % 4], "accelerators": shares}}
    return {
        "fullnameOverride": "a-release-name-that-is-forty-characters",
        "auth": {"admins": ["local:a"], "local": {"enabled": True, "users": {}}},
        "catalog": {
            "requireDigests": False,
            "images": {"scipy": {"name": "quay.io/jupyter/scipy-notebook", "tag": "2026-11-02"}},
            "accelerators": accelerators,
            "resources": {
                "cpu": {"displayName": "CPU", "image": "scipy", "cpu": {"request": 1}, "memory": {"request": "1Gi"}},
                "gpu": {"displayName": "GPU", "image": "scipy", "cpu": {"request": 1}, "memory": {"request": "1Gi"},
                        "accelerators": ["strix", "mi300x", "l40s"]},
            },
            "teams": teams,
        },
        "sessions": {"defaultMinutes": 30, "maxMinutes": 600, "idleCullMinutes": 0},
        "queue": {"enabled": True, "queueingStrategy": "StrictFIFO"},
        "singleuser": {"namespace": "lab-users"},
    }


def test_chart_objects_equal_the_hubs_for_a_generated_catalog(tmp_path):
    values = tmp_path / "generated.yaml"
    values.write_text(yaml.safe_dump(generated()), encoding="utf-8")
    objs, catalog = rendered(tmp_path, values)
    assert objs == ordered(queue.objects(catalog, "a-release-name-that-is-forty-characters"))
    names = [o["metadata"]["name"] for o in objs]
    assert all(len(n) <= 63 for n in names) and len(set(names)) == len(names)
    assert sum(o["kind"] == "ClusterQueue" for o in objs) == 13
    assert {o["spec"]["queueingStrategy"] for o in objs if o["kind"] == "ClusterQueue"} == {"StrictFIFO"}


def test_nothing_without_kueue_or_with_the_queue_off(tmp_path):
    example = CONFIG / "examples" / "gpu-queue.yaml"
    assert rendered(tmp_path, example, api=False)[0] == []
    off = tmp_path / "off.yaml"
    off.write_text("queue: {enabled: false}\n", encoding="utf-8")
    assert rendered(tmp_path, example, off)[0] == []


def test_objects_match_kueues_own_schemas(tmp_path):
    """Every rendered object against the v1beta2 openAPIV3Schema of Kueue's CRDs, from the chart of the Kueue
    version the cluster tier runs (scripts/setup.sh copies it to .tools/kueue-chart)."""
    chart = TOOLS.parent / "kueue-chart"
    if not chart.is_dir():
        pytest.skip(f"{chart} is not installed (make setup copies it)")
    crds = [d for d in yaml.safe_load_all(render_kueue_crds(chart)) if d and d["kind"] == "CustomResourceDefinition"]
    schemas = {c["spec"]["names"]["kind"]: next(v["schema"]["openAPIV3Schema"] for v in c["spec"]["versions"] if v["name"] == "v1beta2")
               for c in crds}
    values = tmp_path / "generated.yaml"
    values.write_text(yaml.safe_dump(generated()), encoding="utf-8")
    for source in (CONFIG / "examples" / "gpu-queue.yaml", values):
        for obj in rendered(tmp_path, source)[0]:
            jsonschema.validate(obj, schemas[obj["kind"]])


def render_kueue_crds(chart) -> str:
    return helm("helm3", "template", "kueue", chart, "-n", "kueue-system", "--show-only", "templates/crd/kueue.x-k8s.io_clusterqueues.yaml",
                "--show-only", "templates/crd/kueue.x-k8s.io_cohorts.yaml", "--show-only", "templates/crd/kueue.x-k8s.io_localqueues.yaml",
                "--show-only", "templates/crd/kueue.x-k8s.io_resourceflavors.yaml").stdout
