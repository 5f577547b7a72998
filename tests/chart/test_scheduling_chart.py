"""Packing and headroom in the chart (issue 30): the user scheduler is rendered only while a catalog resource asks
for it, from the Kubernetes release the project builds (never :latest), with its own ServiceAccount, read-only
rights cluster-wide and writes only in the release's namespace, a leader Lease, a restricted pod and a
NetworkPolicy; its name is the one the hub puts on packed servers and the one the admission policy admits for them.
User placeholders are the size and placement of one server of their resource, at a PriorityClass below every
server that never preempts, running the prepuller's pause image. The scheduler placing and the placeholders giving
way on a real control plane: tests/cluster/test_user_scheduler.py."""

from __future__ import annotations

import re

import pytest
import yaml
from support import ROOT
from teamhub.catalog.access import access_of
from teamhub.catalog.loader import load_or_raise
from teamhub.catalog.placement import build_launch
from test_chart import CONFIG, HELMS, KUBE_VERSIONS, helm, render, write_values

VAP = ("--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")
PACKED = {"catalog": {"resources": {"cpu-small": {"userScheduler": True}}}}
PLACEHOLDERS = {"scheduling": {"userPlaceholders": {"nodeKinds": {
    "cpu": {"resource": "cpu-small", "replicas": 3},
    "strix": {"resource": "course-cv", "accelerator": "strix-halo", "replicas": 1},
    "mi300x": {"resource": "course-cv", "accelerator": "mi300x", "replicas": 2}}}}}
NAME = "t-teamhub-user-scheduler"


def kubernetes_version() -> str:
    return re.search(r"^KUBERNETES_VERSION=(v[0-9.]+)$", (ROOT / "scripts" / "setup.sh").read_text(), re.M).group(1)


def objects(tmp_path, *overlays, which="helm3") -> dict:
    files = [CONFIG / "values.yaml", *(write_values(tmp_path, f"o{i}", o) for i, o in enumerate(overlays))]
    return {(d["kind"], d["metadata"]["name"]): d for d in render(which, *files, extra=VAP)}


def merged(*overlays) -> dict:
    out: dict = {}

    def deep(a, b):
        for k, v in b.items():
            a[k] = deep(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    for o in overlays:
        deep(out, yaml.safe_load(yaml.safe_dump(o)))
    return out


def hub_env(docs) -> dict:
    hub = docs["Deployment", "t-teamhub-hub"]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in hub["env"]}


def test_without_a_packed_resource_no_user_scheduler_is_rendered(tmp_path):
    docs = objects(tmp_path)
    assert not [k for k in docs if "user-scheduler" in k[1]]
    assert hub_env(docs)["TEAMHUB_USER_SCHEDULER"] == NAME  # the hub always knows the name; it uses it only for packed resources
    params = docs["ConfigMap", "t-teamhub-admission"]["data"]
    assert {v.split("\n")[15] for k, v in params.items() if not k.startswith(("_", "volume.", "home"))} == {"false"}


@pytest.mark.parametrize("which", HELMS)
def test_the_user_scheduler_is_the_pinned_kube_scheduler_in_a_restricted_pod(which, tmp_path):
    docs = objects(tmp_path, PACKED, which=which)
    pod = docs["Deployment", NAME]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == f"registry.k8s.io/kube-scheduler:{kubernetes_version()}" and not c["image"].endswith(":latest")
    assert c["command"][:2] == ["kube-scheduler", "--config=/etc/user-scheduler/config.yaml"]
    assert pod["serviceAccountName"] == NAME and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz", "scheme": "HTTPS"}
    assert docs["Deployment", NAME]["spec"]["replicas"] == 2


def test_its_configuration_packs_and_elects_a_leader_and_its_name_is_the_hubs_and_the_policys(tmp_path):
    docs = objects(tmp_path, PACKED)
    config = yaml.safe_load(docs["ConfigMap", NAME]["data"]["config.yaml"])
    assert config["kind"] == "KubeSchedulerConfiguration" and config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["enableProfiling"] is False and config["enableContentionProfiling"] is False
    assert config["leaderElection"] == {"leaderElect": True, "resourceLock": "leases", "resourceName": NAME, "resourceNamespace": "lab"}
    [profile] = config["profiles"]
    assert profile["schedulerName"] == NAME == hub_env(docs)["TEAMHUB_USER_SCHEDULER"]
    fit = next(p["args"] for p in profile["pluginConfig"] if p["name"] == "NodeResourcesFit")
    assert fit["scoringStrategy"]["type"] == "MostAllocated"
    assert {r["name"] for r in fit["scoringStrategy"]["resources"]} >= {"cpu", "memory", "amd.com/gpu", "nvidia.com/gpu"}
    assert {p["name"] for p in profile["plugins"]["score"]["disabled"]} == {"NodeResourcesBalancedAllocation", "PodTopologySpread"}
    scheduling = next(v["expression"] for v in docs["ValidatingAdmissionPolicy", "lab-t-teamhub-user-pods"]["spec"]["validations"]
                      if "schedulerName" in v["expression"])
    assert f"schedulerName.orValue('') == '{NAME}'" in scheduling
    params = docs["ConfigMap", "t-teamhub-admission"]["data"]
    shapes = {k: v.split("\n") for k, v in params.items() if not k.startswith(("_", "volume.", "home"))}
    assert {k for k, lines in shapes.items() if lines[15] == "true"} == {"cpu-small"}


def test_its_rights_read_cluster_wide_and_write_only_in_the_release_namespace(tmp_path):
    docs = objects(tmp_path, PACKED)
    cluster = docs["ClusterRole", f"lab-{NAME}"]["rules"]
    writes = [r for r in cluster if set(r["verbs"]) - {"get", "list", "watch"}]
    assert writes == [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["update", "patch"]}]
    read = {(g, res) for r in cluster for g in r["apiGroups"] for res in r["resources"]}
    assert not {res for _, res in read} & {"secrets", "configmaps", "serviceaccounts"}
    assert {("resource.k8s.io", "resourceclaims"), ("resource.k8s.io", "resourceslices"), ("resource.k8s.io", "deviceclasses")} <= read
    role = docs["Role", NAME]
    assert "namespace" not in role["metadata"]  # the release's namespace
    granted = {(g, res, v) for r in role["rules"] for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    assert {("", "pods/binding", "create"), ("", "pods", "delete"), ("resource.k8s.io", "resourceclaims/binding", "update"),
            ("coordination.k8s.io", "leases", "update")} <= granted
    lease = next(r for r in role["rules"] if r.get("resourceNames"))
    assert lease["resourceNames"] == [NAME] and set(lease["verbs"]) == {"get", "update"}
    binding = docs["ClusterRoleBinding", f"lab-{NAME}"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "lab"}]
    assert binding["roleRef"]["name"] == f"lab-{NAME}"  # its own role, never the built-in system:kube-scheduler


def test_with_a_user_namespace_it_may_also_write_there(tmp_path):
    rendered = render("helm3", CONFIG / "values.yaml", write_values(tmp_path, "p", PACKED),
                      write_values(tmp_path, "n", {"singleuser": {"namespace": "lab-users"}}), extra=VAP)
    spaces = sorted(d["metadata"].get("namespace", "lab") for d in rendered if d["kind"] == "Role" and d["metadata"]["name"] == NAME)
    assert spaces == ["lab", "lab-users"]
    users = next(d for d in rendered if d["kind"] == "Role" and d["metadata"].get("namespace") == "lab-users")
    assert not [r for r in users["rules"] if "leases" in r["resources"]]  # the Lease lives in the release's namespace only


def test_its_network_policy_lets_it_reach_the_api_server_only(tmp_path):
    policy = objects(tmp_path, PACKED)["NetworkPolicy", NAME]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy
    assert policy["egress"] == [{"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}]
    assert objects(tmp_path, PACKED, {"networkPolicy": {"enabled": False}}).get(("NetworkPolicy", NAME)) is None


def test_placeholders_are_one_server_of_their_resource_below_every_server(tmp_path):
    docs = objects(tmp_path, PACKED, PLACEHOLDERS)
    cls = docs["PriorityClass", "lab-t-teamhub-user-placeholder"]
    assert cls["value"] == -10 and cls["preemptionPolicy"] == "Never" and cls["globalDefault"] is False
    values = write_values(tmp_path, "all", merged(yaml.safe_load((CONFIG / "values.yaml").read_text()), PACKED, PLACEHOLDERS))
    catalog = load_or_raise([values]).catalog
    pause = yaml.safe_load((ROOT / "chart" / "values.yaml").read_text())["prePuller"]["pause"]
    for kind, want in PLACEHOLDERS["scheduling"]["userPlaceholders"]["nodeKinds"].items():
        deploy = docs["Deployment", f"t-teamhub-placeholder-{kind}"]
        pod = deploy["spec"]["template"]["spec"]
        assert deploy["spec"]["replicas"] == want["replicas"]
        resource = catalog.resources[want["resource"]]
        acc = catalog.accelerators[want["accelerator"]] if want.get("accelerator") else None
        launch = build_launch(catalog, resource, acc, 60, access_of(catalog, (), admin=True))
        [c] = pod["containers"]
        assert c["image"] == f"{pause['name']}:{pause['tag']}"
        expected = {"cpu": str(resource.cpu_request), "memory": str(resource.memory_request)}
        if launch.gpu:
            expected[launch.gpu.resource] = str(launch.gpu.count)
        assert c["resources"]["requests"] == c["resources"]["limits"] == expected, kind
        assert pod.get("nodeSelector", {}) == dict(launch.node_selector), kind
        assert pod.get("tolerations", []) == [dict(t) for t in launch.tolerations], kind
        assert pod["priorityClassName"] == "lab-t-teamhub-user-placeholder" and pod["terminationGracePeriodSeconds"] == 0
        assert pod["automountServiceAccountToken"] is False and c["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod.get("schedulerName") == (NAME if resource.user_scheduler else None), kind
    policy = docs["NetworkPolicy", "t-teamhub-user-placeholder"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy and "egress" not in policy


def test_no_placeholders_no_priority_class(tmp_path):
    docs = objects(tmp_path)
    assert not [k for k in docs if "placeholder" in k[1]]


def test_a_placeholder_of_no_catalog_placement_is_refused_by_helm_with_the_path(tmp_path):
    bad = {"scheduling": {"userPlaceholders": {"nodeKinds": {"gpu": {"resource": "course-cv", "replicas": 1}}}}}
    proc = helm("helm3", "template", "t", ROOT / "chart", "-f", CONFIG / "values.yaml", "-f", write_values(tmp_path, "bad", bad),
                "--kube-version", KUBE_VERSIONS[-1], check=False)
    assert proc.returncode != 0
    assert 'scheduling.userPlaceholders.nodeKinds.gpu: resource "course-cv" is not a placement of the catalog' in proc.stderr


def test_the_placeholder_priority_must_stay_below_servers(tmp_path):
    bad = {"scheduling": {"userPlaceholders": {"priority": 0}}}
    proc = helm("helm3", "template", "t", ROOT / "chart", "-f", CONFIG / "values.yaml", "-f", write_values(tmp_path, "bad", bad),
                "--kube-version", KUBE_VERSIONS[-1], check=False)
    assert proc.returncode != 0 and "priority" in proc.stderr
