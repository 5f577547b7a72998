"""Python owns the prepull placement rule (teamhub.catalog.placement.placements, built on the spawner's
`place`); the chart's template writes it again because Helm cannot call Python. These tests render the chart
for every values file (and a generated large catalog) and assert that the puller DaemonSets carry exactly
the groups placements() returns: the same images, node selector terms, tolerations and pull secrets."""

from __future__ import annotations

import json

import pytest
import yaml
from support import CONFIG
from teamhub.catalog.loader import load_or_raise
from teamhub.catalog.placement import placements
from test_chart import CHART, VALUES_FILES, render

HASH = "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa"  # bcrypt of "test-pass" (not a demo account's published hash, which validation refuses)


def _term(term: dict) -> dict:
    return {e["key"]: e["values"][0] for e in term["matchExpressions"]}


def rendered_groups(docs: list, kind: str) -> list:
    """(terms, tolerations, image refs, pull secrets) of every `kind` puller DaemonSet."""
    out = []
    for d in docs:
        if d["kind"] != "DaemonSet" or d["metadata"]["labels"]["app.kubernetes.io/component"] != f"{kind}-puller":
            continue
        spec = d["spec"]["template"]["spec"]
        affinity = spec.get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {})
        out.append((tuple(_term(t) for t in affinity.get("nodeSelectorTerms", [])), tuple(spec.get("tolerations", ())),
                    tuple(c["image"] for c in spec["initContainers"]),
                    tuple(s["name"] for s in spec.get("imagePullSecrets", ()))))
    return out


def python_groups(values_files: list) -> list:
    checked = load_or_raise([CHART / "values.yaml", *values_files])
    pause_secrets = tuple(checked.values["prePuller"]["pause"].get("pullSecrets") or ())
    return [(g.terms, g.tolerations, tuple(i.ref for i in g.images), tuple(dict.fromkeys(g.pull_secrets + pause_secrets)))
            for g in placements(checked.catalog, checked.values["prePuller"]["extraImages"])]


def _canonical(group) -> str:
    return json.dumps(group, sort_keys=True)  # dict key order is not part of the comparison; list order is


def assert_same_groups(values_files: list) -> list:
    docs = render("helm3", *values_files)
    expected = python_groups(values_files)
    for kind in ("continuous", "hook"):  # under `helm template` the hook pulls the whole plan
        got = rendered_groups(docs, kind)
        assert len(got) == len(expected), (kind, got, expected)
        assert sorted(map(_canonical, got)) == sorted(map(_canonical, expected)), kind
    return expected


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_pullers_carry_exactly_the_python_placements(values):
    assert_same_groups([values])


def large_catalog(n_resources: int = 240, n_images: int = 30) -> dict:
    """Every placement feature: CPU resources with and without node selectors, plain GPUs, accelerators with
    selectors and taints, overrides with their own image, selector and tolerations, images not pre-pulled,
    images shared by resources on different nodes, extra images."""
    taint = [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    accs = {f"acc-{a}": {"displayName": f"Acc {a}", "gpu": {"resource": "amd.com/gpu", "count": 1},
                         "nodeSelector": {"node-type": f"gpu-{a}"}, **({"tolerations": taint} if a % 2 else {})}
            for a in range(4)}
    images = {f"img-{i}": {"name": f"registry.example/lab/img-{i}", "tag": f"2026.{i}",
                           **({"prePull": False} if i % 7 == 6 else {}), **({"pullSecrets": [f"reg-{i % 3}"]} if i % 5 == 0 else {})}
              for i in range(n_images)}
    resources = {}
    for r in range(n_resources):
        res = {"displayName": f"R {r}", "image": f"img-{(r * 7) % n_images}", "cpu": {"request": 1}, "memory": {"request": "1Gi"}}
        shape = r % 6
        if shape == 1:
            res["nodeSelector"] = {"pool": f"cpu-{r % 3}"}
        elif shape == 2:
            res["nodeSelector"] = {"pool": "cpu-0"}
            res["tolerations"] = [{"key": "pool", "operator": "Equal", "value": "cpu-0", "effect": "NoSchedule"}]
        elif shape == 3:
            res["gpu"] = {"resource": "nvidia.com/gpu", "count": 1}
            res["nodeSelector"] = {"node-type": "l40s"}
            res["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        elif shape >= 4:
            res["accelerators"] = [f"acc-{(r + k) % 4}" for k in range(1 + r % 3)]
            if shape == 5:
                first = res["accelerators"][0]
                res["acceleratorOverrides"] = {first: {"image": f"img-{(r + 1) % n_images}", "nodeSelector": {"zone": f"z{r % 2}"},
                                                       "tolerations": [{"key": "zone", "operator": "Exists"}]}}
        resources[f"r-{r:03d}"] = res
    return {
        "auth": {"local": {"enabled": True, "users": {"a": {"passwordHash": HASH}}}},
        "catalog": {"images": images, "accelerators": accs, "resources": resources,
                    "teams": {"everyone": {"resources": list(resources)[:10]}}},
        "prePuller": {"extraImages": {
            "extra-any": {"name": "registry.example/lab/extra", "tag": "1"},
            "extra-gpu": {"name": "registry.example/lab/extra-gpu", "tag": "1", "pullSecrets": ["reg-9"],
                          "nodeSelector": {"node-type": "gpu-1"}, "tolerations": taint},
        }},
    }


def test_pullers_carry_exactly_the_python_placements_for_a_large_catalog(tmp_path):
    path = tmp_path / "large.yaml"
    path.write_text(yaml.safe_dump(large_catalog()), encoding="utf-8")
    groups = assert_same_groups([path])
    # The generated catalog reaches every branch of the rule: every node, several terms, tolerations, secrets.
    assert any(not terms for terms, *_ in groups)
    assert any(len(terms) > 1 for terms, *_ in groups)
    assert any(tols for _, tols, *_ in groups) and any(secrets for *_, secrets in groups)
    pulled = {ref for _, _, refs, _ in groups for ref in refs}
    assert "registry.example/lab/img-6:2026.6" not in pulled  # prePull: false
