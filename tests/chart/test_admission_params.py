"""One source of truth for what the cluster admits from the hub (issue 16): the admission policy's
parameters the chart renders equal `teamhub.catalog.admission.params` computed by the hub's own placement code
from the values the hub reads (the rendered values Secret), for every values file in config/ and
config/examples/ and for a generated catalog of 1,000 resources using every placement feature."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support import CONFIG
from teamhub.catalog import admission
from teamhub.catalog.loader import load_or_raise
from teamhub.hub.config import storage_settings
from test_chart import KUBE_VERSIONS, VALUES_FILES, render

VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
SHOW = ("templates/admission/policy.yaml", "templates/hub/values-secret.yaml")


def rendered(tmp_path: Path, *values_files) -> tuple[dict, dict]:
    """(the policy's parameters, the values the hub reads) as the chart renders them."""
    extra = ["--api-versions", VAP, *(a for s in SHOW for a in ("--show-only", s))]
    docs = render("helm3", *values_files, extra=extra)
    params = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret")
    text = secret.get("stringData", {}).get("values.yaml") or base64.b64decode(secret["data"]["values.yaml"]).decode()
    hub_values = tmp_path / "hub-values.yaml"
    hub_values.write_text(text, encoding="utf-8")
    return params, yaml.safe_load(text)


def expected(tmp_path: Path, values: dict) -> dict:
    path = tmp_path / "hub-values.yaml"
    return admission.params(load_or_raise([path]).catalog, storage_settings(values))


def files_for(values: Path) -> tuple:
    # chart-* examples hold chart settings only, on top of the operator's catalog
    return (CONFIG / "values.yaml", values) if values.name.startswith("chart-") else (values,)


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_chart_params_equal_the_hubs_placements(tmp_path, values):
    params, hub_values = rendered(tmp_path, *files_for(values))
    assert params == expected(tmp_path, hub_values)


def generated(n: int) -> dict:
    """A catalog exercising every placement feature the policy checks, n resources."""
    images = {
        "scipy": {"name": "quay.io/jupyter/scipy-notebook", "tag": "2026-11-02"},
        "rocm": {"name": "ghcr.io/lab/rocm", "tag": "6.2", "pullSecrets": ["ghcr", "mirror"], "pullPolicy": "Always"},
        "rocm-gfx": {"name": "ghcr.io/lab/rocm", "tag": "6.2-gfx1151", "digest": "sha256:" + "a" * 64,
                     "securityContext": {"runAsUser": 1001}},
        "vendor": {"name": "nvcr.io/nvidia/pytorch", "tag": "24.10-py3", "securityContext": {"runAsUser": 2000, "fsGroup": 2000}},
    }
    accelerators = {
        "strix": {"displayName": "Strix", "gpu": {"resource": "amd.com/gpu", "count": 1}, "nodeSelector": {"node-type": "strix"},
                  "env": {"HSA_OVERRIDE_GFX_VERSION": "11.5.1", "OMP_NUM_THREADS": "8"}},
        "mi300x": {"displayName": "MI300X", "gpu": {"resource": "amd.com/gpu", "count": 2},
                   "nodeSelector": {"node-type": "mi300x", "zone": "a"},
                   "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                   {"key": "maintenance", "value": "soon", "effect": "NoExecute", "tolerationSeconds": 600}]},
    }
    resources = {}
    for i in range(n):
        r = {"displayName": f"R{i}", "image": ["scipy", "rocm", "vendor"][i % 3],
             "cpu": [{"request": 2, "limit": 4}, {"request": "500m"}, {"request": 0.5, "limit": 1.5}][i % 3],
             "memory": [{"request": "4Gi", "limit": "6Gi"}, {"request": 1073741824}, {"request": "1G", "limit": "2G"}][i % 3]}
        if i % 4 == 1:
            r["accelerators"] = ["strix", "mi300x"]
            r["acceleratorOverrides"] = {"strix": {"image": "rocm-gfx", "nodeSelector": {"pool": "edu"}, "env": {"OMP_NUM_THREADS": "16"},
                                                   "tolerations": [{"key": "edu", "operator": "Exists"}]}}
        elif i % 4 == 2:
            r["gpu"] = {"resource": "nvidia.com/gpu", "count": 1 + i % 2}
            r["nodeSelector"] = {"node-type": "l40s"}
            r["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        if i % 5 == 0:
            r["maxSessionMinutes"] = 30 + i % 200
            r["securityContext"] = {"runAsGroup": 1234}
        if i % 7 == 0:
            r["volumes"] = ["scratch"]
        if i % 6 == 0:  # values the policy's line format must escape; the resource's own env under the accelerator's
            r["env"] = {"OMP_NUM_THREADS": "2", "TRICKY": "a,b\\c\nd=e", "EMPTY": "", "NVIDIA_VISIBLE_DEVICES": "all"}
        resources[f"res-{i}"] = r
    teams = {f"team-{t}": {"resources": [f"res-{(t * 7 + k) % n}" for k in range(5)], "volumes": ["data"]}
             for t in range(n // 10)}
    teams["everyone"] = {"resources": ["res-0", "res-1"]}
    return {
        "auth": {"admins": ["local:admin"], "local": {"enabled": True, "users": {}}},
        "catalog": {"images": images, "accelerators": accelerators, "resources": resources, "teams": teams,
                    "volumes": {"data": {"pvc": "data", "mountPath": "/data"},
                                "scratch": {"pvc": "scratch", "mountPath": "/scratch", "subPath": "shared", "readOnly": False}}},
        "sessions": {"defaultMinutes": 30, "maxMinutes": 600, "idleCullMinutes": 0},
        "singleuser": {"storage": {"homeMountPath": "/home/me"}, "securityContext": {"runAsUser": 1500}},
    }


def test_chart_params_equal_the_hubs_placements_for_a_large_catalog(tmp_path):
    values = tmp_path / "large.yaml"
    values.write_text(yaml.safe_dump(generated(1000)), encoding="utf-8")
    params, hub_values = rendered(tmp_path, values)
    assert len(params) == 1000 + 250 + 2 + 1 + 1  # resources, extra accelerator placements, volumes, home, launch env
    assert "TRICKY=a\\x2cb\\\\c\\nd=e" in params["res-0"].split("\n")[14]
    assert params == expected(tmp_path, hub_values)


def test_no_home_volume_without_storage(tmp_path):
    values = tmp_path / "no-storage.yaml"
    values.write_text(yaml.safe_dump({"singleuser": {"storage": {"type": "none"}}}), encoding="utf-8")
    params, hub_values = rendered(tmp_path, CONFIG / "values.yaml", values)
    assert "home" not in params
    assert params == expected(tmp_path, hub_values)


def test_policy_objects_are_valid_kubernetes_1_30_and_newest():
    docs = render("helm3", CONFIG / "values.yaml", extra=["--api-versions", VAP, "--show-only", SHOW[0]])
    assert [d["kind"] for d in docs] == ["ConfigMap", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for doc in docs:
        for version in ("1.30.0", KUBE_VERSIONS[-1]):
            kubernetes_validate.validate(doc, version, strict=True)
