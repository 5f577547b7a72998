"""The chart, without a cluster: lint, render and validate with Helm 3 and Helm 4, schema refusals,
helm-unittest, and properties every rendered object must have.

Kubernetes versions supported (Chart.yaml kubeVersion): 1.28 (oldest) to 1.37 (newest); every rendered
manifest is validated strictly against both.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support import CONFIG, ROOT, TOOLS, tree_env

CHART = ROOT / "chart"
KUBE_VERSIONS = ("1.28.0", "1.37.0")
DRA_OLDEST = "1.34.0"  # resource.k8s.io/v1: accelerators by Dynamic Resource Allocation
HELMS = {"helm3": TOOLS / "helm", "helm4": TOOLS / "helm4"}
VALUES_FILES = sorted(CONFIG.glob("*.yaml")) + sorted((CONFIG / "examples").glob("*.yaml"))

# Toggles on top of config/values.yaml: every optional part on and off.
TOGGLES = {
    "defaults": {},
    "ingress-tls": {"ingress": {"enabled": True, "className": "nginx", "hosts": ["hub.example.org"],
                                "tls": [{"hosts": ["hub.example.org"], "secretName": "hub-tls"}]}},
    "ingress-any-host": {"ingress": {"enabled": True}},
    "per-user-origins": {"hub": {"subdomainHost": "https://hub.example.org"},
                         "ingress": {"enabled": True, "hosts": ["hub.example.org"], "subdomainTlsSecretName": "wild-tls",
                                     "tls": [{"hosts": ["hub.example.org"], "secretName": "hub-tls"}]}},
    "nodeport": {"proxy": {"service": {"type": "NodePort", "nodePort": 30080}}},
    "loadbalancer": {"proxy": {"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"],
                                           "annotations": {"lb.example.org/internal": "true"}}}},
    "postgres-existing-secret": {"hub": {"db": {"type": "postgres", "url": "postgresql://teamhub@db:5432/teamhub",
                                                "existingSecret": {"name": "pg", "key": "pw"}}}},
    "postgres-inline-password": {"hub": {"db": {"type": "postgres", "url": "postgresql://teamhub@db/teamhub", "password": "x"}}},
    "existing-secret": {"hub": {"existingSecret": "gitops-secrets"}},
    "pdbs": {"hub": {"pdb": {"enabled": True}}, "proxy": {"pdb": {"enabled": True}}},
    "no-prepuller": {"prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}}},
    "extra-images": {"prePuller": {"extraImages": {"r": {"name": "docker.io/rocker/r-ver", "tag": "4.4.2",
                                                         "pullSecrets": ["regcred"], "nodeSelector": {"pool": "cpu"},
                                                         "tolerations": [{"key": "x", "operator": "Exists"}]}}}},
    "no-network-policy": {"networkPolicy": {"enabled": False}},
    "no-internet": {"networkPolicy": {"singleuser": {"internetEgress": False, "privateNetworkEgress": True,
                                                     "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
                                                                      "ports": [{"port": 443}]}]}}},
    "no-storage": {"singleuser": {"storage": {"type": "none"}, "clusterAutoscaler": True}},
    "hub-placement": {"hub": {"nodeSelector": {"pool": "core"}, "tolerations": [{"key": "core", "operator": "Exists"}],
                              "extraEnv": {"JUPYTERHUB_LOG_LEVEL": "DEBUG"}, "image": {"pullSecrets": ["regcred"]}},
                      "test": {"image": {"name": "docker.io/library/python", "tag": "3.12-slim"}}},
    "fullname-override": {"fullnameOverride": "lab-hub"},
    "base-url": {"hub": {"baseUrl": "/jupyter/"}, "ingress": {"enabled": True, "hosts": ["apps.example.org"]}},
    "packing-and-placeholders": {"catalog": {"resources": {"cpu-small": {"userScheduler": True}}},
                                 "scheduling": {"userPlaceholders": {"nodeKinds": {
                                     "cpu": {"resource": "cpu-small", "replicas": 2},
                                     "strix": {"resource": "course-cv", "accelerator": "strix-halo", "replicas": 1}}}}},
}


def helm(which: str, *args, check=True) -> subprocess.CompletedProcess:
    binary = HELMS[which]
    if not binary.exists():
        pytest.skip(f"{binary} is not installed (make setup builds it)")
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, env=tree_env(), timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{binary.name} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def write_values(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def render(which: str, *values_files, extra=()) -> list[dict]:
    args = ["template", "t", CHART, "--namespace", "lab", "--kube-version", KUBE_VERSIONS[-1]]
    for f in values_files:
        args += ["-f", f]
    out = helm(which, *args, *extra).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@cache
def default_render(which: str) -> tuple:
    return tuple(render(which, CONFIG / "values.yaml"))


def kube_versions(values: Path) -> tuple:
    """The oldest and newest Kubernetes a values file can run on: DRA examples (dra-*) need resource.k8s.io/v1 (1.34)."""
    return (DRA_OLDEST, KUBE_VERSIONS[-1]) if values.name.startswith("dra-") else KUBE_VERSIONS


def validate_all(docs: list[dict], versions: tuple = KUBE_VERSIONS) -> None:
    problems = []
    for doc in docs:
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{version} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def pod_specs(docs):
    for doc in docs:
        if doc["kind"] == "Pod":
            yield doc["metadata"]["name"], doc["spec"]
        elif doc["kind"] in ("Deployment", "DaemonSet", "Job", "StatefulSet"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


# --- lint and render, both helms ---------------------------------------------------------------

@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_lint_strict_and_render_every_config_file(which, values):
    for version in kube_versions(values):
        helm(which, "lint", "--strict", CHART, "-f", values, "--kube-version", version)
    validate_all(render(which, values), kube_versions(values))


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize("toggle", TOGGLES)
def test_toggles_lint_render_and_validate(which, toggle, tmp_path):
    overlay = write_values(tmp_path, toggle, TOGGLES[toggle])
    helm(which, "lint", "--strict", CHART, "-f", CONFIG / "values.yaml", "-f", overlay, "--kube-version", KUBE_VERSIONS[0])
    validate_all(render(which, CONFIG / "values.yaml", overlay))


def test_chart_defaults_alone_render_and_validate(tmp_path):
    # The chart's defaults enable no login method, which the schema refuses (tests/chart/test_schema_rules.py):
    # one switch on top of them must be enough for every template.
    validate_all(render("helm3", write_values(tmp_path, "login", {"auth": {"local": {"enabled": True}}})))


# --- the schema refuses bad values, in both helms ------------------------------------------------

BAD_VALUES = {
    "unknown top-level key": ({"hubb": {}}, "hubb"),
    "unknown chart key": ({"hub": {"replicas": 2}}, "replicas"),
    "memory 4GB": ({"catalog": {"resources": {"x": {"displayName": "X", "image": "i", "cpu": {"request": 1},
                                                    "memory": {"request": "4GB"}}}}}, "memory"),
    "hub image latest": ({"hub": {"image": {"tag": "latest"}}}, "tag"),
    "proxy service type": ({"proxy": {"service": {"type": "External"}}}, "type"),
    "db type": ({"hub": {"db": {"type": "mysql"}}}, "type"),
    "storage capacity": ({"singleuser": {"storage": {"capacity": "lots"}}}, "capacity"),
    "unknown prePuller key": ({"prePuller": {"hook": {"timeout": 5}}}, "timeout"),
    "capitals in a username": ({"auth": {"admins": ["oidc:JDoe"]}}, "admins"),
}


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize("case", BAD_VALUES)
def test_schema_refuses_bad_values(which, case, tmp_path):
    data, word = BAD_VALUES[case]
    bad = write_values(tmp_path, "bad", data)
    for command in ("template", "lint"):
        args = [command, *(["t"] if command == "template" else []), CHART, "-f", CONFIG / "values.yaml", "-f", bad,
                "--kube-version", KUBE_VERSIONS[-1]]
        proc = helm(which, *args, check=False)
        assert proc.returncode != 0, f"{which} {command} accepted {case}"
        assert "schema" in (proc.stderr + proc.stdout).lower() and word in proc.stderr + proc.stdout


# --- helm-unittest suites ----------------------------------------------------------------------

def test_helm_unittest_suites():
    binary = TOOLS / "helm-unittest"
    if not binary.exists():
        pytest.skip("helm-unittest is not installed (make setup builds it)")
    proc = subprocess.run([str(binary), str(CHART)], capture_output=True, text=True, env=tree_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Test Suites:" in proc.stdout and "failed" not in proc.stdout.split("Test Suites:")[1].split("\n")[0]


# --- properties of what is rendered ------------------------------------------------------------

@pytest.mark.parametrize("which", HELMS)
def test_checksum_annotation_follows_the_values(which, tmp_path):
    def checksum(*files):
        hub = next(d for d in render(which, *files) if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-teamhub-hub")
        return hub["spec"]["template"]["metadata"]["annotations"]["checksum/hub-values"]

    base = checksum(CONFIG / "values.yaml")
    assert base == checksum(CONFIG / "values.yaml"), "same values must give the same checksum"
    changed = write_values(tmp_path, "changed", {"sessions": {"idleCullMinutes": 30}})
    assert checksum(CONFIG / "values.yaml", changed) != base


def test_values_secret_is_the_values_the_hub_reads():
    docs = default_render("helm3")
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "t-teamhub-values")
    values = yaml.safe_load(secret["stringData"]["values.yaml"])
    operator = yaml.safe_load((CONFIG / "values.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["catalog"]
    # the operator's catalog as written; what it leaves out, the chart's defaults (e.g. deviceClasses: {})
    assert values["catalog"] == {**{k: v for k, v in defaults.items() if k not in operator["catalog"]}, **operator["catalog"]}
    assert values["auth"]["local"]["users"].keys() == operator["auth"]["local"]["users"].keys()
    assert values["singleuser"]["storage"] == {"type": "dynamic", "capacity": "10Gi", "storageClass": "", "homeMountPath": "/home/jovyan"}
    assert not any(d["kind"] == "ConfigMap" and "values.yaml" in d.get("data", {}) for d in docs), "values must not be in a ConfigMap"


@pytest.mark.parametrize("which", HELMS)
def test_recommended_labels_everywhere(which):
    for doc in default_render(which):
        labels = doc["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "app.kubernetes.io/component"):
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"


def test_every_pod_meets_pod_security_restricted():
    docs = list(default_render("helm3")) + render("helm3", CONFIG / "values.yaml", extra=["--set", "ingress.enabled=true"])
    seen = 0
    for name, spec in pod_specs(docs):
        seen += 1
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, name
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
            assert sc["runAsNonRoot"] is True, (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
        for vol in spec.get("volumes", []):
            assert "hostPath" not in vol, (name, vol)
    assert seen >= 8  # hub, proxy, 4+4 pullers, awaiter, test pod


def test_every_image_is_pinned():
    for name, spec in pod_specs(default_render("helm3")):
        for c in spec.get("initContainers", []) + spec["containers"]:
            ref = c["image"]
            tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
            assert tag and tag != "latest", f"{name}/{c['name']} uses {ref}"


def test_rbac_is_namespaced_and_minimal():
    docs = default_render("helm3")
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "t-teamhub-hub")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("persistentvolumeclaims", "delete") not in granted, "the hub must never delete user storage"
    assert {r for r, _ in granted} == {"pods", "persistentvolumeclaims", "events"}


def test_nothing_the_chart_deletes_holds_user_data():
    docs = default_render("helm3")
    for doc in docs:
        if doc["kind"] == "PersistentVolumeClaim":
            assert doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for name, spec in pod_specs(docs):
        for vol in spec.get("volumes", []):
            assert "persistentVolumeClaim" not in vol or vol["persistentVolumeClaim"]["claimName"] == "t-teamhub-hub-db", name
    generated = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "t-teamhub-secrets")
    assert generated["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_prepuller_pulls_each_catalog_image_once_on_its_nodes():
    docs = default_render("helm3")
    pullers = [d for d in docs if d["kind"] == "DaemonSet" and "continuous-puller" in d["metadata"]["name"]]
    pulled = [c["image"] for d in pullers for c in d["spec"]["template"]["spec"]["initContainers"]]
    catalog = yaml.safe_load((CONFIG / "values.yaml").read_text())["catalog"]
    assert sorted(pulled) == sorted(f"{i['name']}:{i['tag']}" for i in catalog["images"].values())
    record = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "t-teamhub-prepulled")
    assert sorted(e.split("/", 1)[1] for e in json.loads(record["data"]["pulled.json"])) == sorted(pulled)
    gpu_images = {c["image"] for d in pullers if d["spec"]["template"]["spec"].get("affinity")
                  for c in d["spec"]["template"]["spec"]["initContainers"]}
    assert "quay.io/jupyter/scipy-notebook:2026-11-02" not in gpu_images
    assert len(gpu_images) == 3


def test_no_hook_puller_or_awaiter_for_a_catalog_without_images(tmp_path):
    """Under `helm template` nothing can be looked up, so the hook pulls everything; with no images at all
    there is nothing to pull and no hook (and no awaiter) is rendered."""
    docs = render("helm3", write_values(tmp_path, "login", {"auth": {"local": {"enabled": True}}}))
    hooks = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook", "").startswith("pre-")]
    assert not [d for d in hooks if "prepull" in d["metadata"]["name"] or "puller" in d["metadata"]["name"]]
    # only the hub's pre-upgrade check remains (tests/chart/test_upgrade_check.py)
    assert {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in hooks} == {"upgrade-check"}


def test_generated_schema_and_values_reference_are_current(teamhub):
    proc = teamhub("schema", "--check")
    assert proc.returncode == 0, proc.stderr
    reference = (ROOT / "docs" / "values-reference.md").read_text()
    for key in ("hub.db.type", "singleuser.storage.capacity", "prePuller.hook.timeoutSeconds", "networkPolicy.singleuser.internetEgress"):
        assert f"`{key}`" in reference


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize("db", ["sqlite-pvc", "postgres", "postgres-existing-claim"])
def test_data_folder_is_a_kept_volume_in_every_database_mode(which, db, tmp_path):
    """Backups taken before a migration and restores scheduled by scripts/rollback.sh live in the data folder;
    they must survive the pod replacement a rollback does, so it is a PVC the chart keeps, or the operator's."""
    overlays = {
        "sqlite-pvc": {},
        "postgres": {"hub": {"db": {"type": "postgres", "url": "postgresql://teamhub@db/teamhub", "password": "x"}}},
        "postgres-existing-claim": {"hub": {"db": {"type": "postgres", "url": "postgresql://teamhub@db/teamhub",
                                                   "backupVolume": {"existingClaim": "hub-backups"}}}},
    }
    docs = render(which, CONFIG / "values.yaml", write_values(tmp_path, db, overlays[db]))
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-teamhub-hub")
    spec = hub["spec"]["template"]["spec"]
    container = spec["containers"][0]
    data_dir = next(e["value"] for e in container["env"] if e["name"] == "TEAMHUB_DATA_DIR")
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == data_dir)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert "persistentVolumeClaim" in volume and "emptyDir" not in volume, volume
    claim = volume["persistentVolumeClaim"]["claimName"]
    if db == "postgres-existing-claim":
        assert claim == "hub-backups"
        assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    else:
        pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim)
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_prepuller_and_spawner_name_images_identically(tmp_path):
    """A digest-pinned image is pulled by exactly the reference the spawner gives the user pod; any difference
    (`:latest` added, digest dropped) makes the node pull again when a person starts."""

    from teamhub.catalog import loader

    overlay = write_values(tmp_path, "digest", {"catalog": {"images": {"scipy": {"digest": DIGEST}}}})
    docs = render("helm3", CONFIG / "values.yaml", overlay)
    pulled = {c["image"] for d in docs if d["kind"] == "DaemonSet" and "continuous-puller" in d["metadata"]["name"]
              for c in d["spec"]["template"]["spec"]["initContainers"]}
    catalog = loader.load_or_raise([CONFIG / "values.yaml", overlay]).catalog
    assert pulled == {img.ref for img in catalog.images.values()}
    assert f"quay.io/jupyter/scipy-notebook:2026-11-02@{DIGEST}" in pulled
