"""The cluster refuses any pod the catalog does not allow when the hub's ServiceAccount creates it
(issue 16): the chart's ValidatingAdmissionPolicy, its binding and its parameters, on a real API server.

Pods are created with a dry run (`dryRun=All`): it goes through every admission step, policy included, and
stores nothing, so one namespace serves every case."""

from __future__ import annotations

import copy
import time

import pytest
import yaml
from support import CONFIG
from teamhub.hub import podrefusal
from teamhub.values.validation import load_or_raise

from .chart import CHART, RELEASE, VALUES, install
from .controlplane import ApiError
from .test_user_pod import manifests

ADMIN = "local:ada"  # may launch every resource of config/values.yaml
VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
HUB = f"{RELEASE}-hub"


def render(cluster, namespace: str, *templates, values=VALUES) -> str:
    args = [a for v in values for a in ("-f", v)]
    shows = [a for t in templates for a in ("--show-only", t)]
    return cluster.helm("helm3", "template", RELEASE, CHART, "-n", namespace, *args, "--kube-version", "1.37.2",
                        "--api-versions", VAP, *shows).stdout


def dry_run(api, namespace: str, pod: dict) -> dict:
    return api.create(f"/api/v1/namespaces/{namespace}/pods?dryRun=All", pod)


def refusal(api, namespace: str, pod: dict) -> str:
    """The API server's message for a refused pod; fails the test when the pod is admitted."""
    try:
        dry_run(api, namespace, pod)
    except ApiError as exc:
        assert exc.status == 403, exc
        return exc.body["message"]
    raise AssertionError(f"admitted: {pod['metadata']['labels']}")


def placements(values=VALUES[0]):
    catalog = load_or_raise([values]).catalog
    return [(r.key, a) for r in catalog.resources.values() for a in (r.accelerators or (None,))]


def options(resource: str, accelerator: str | None) -> dict:
    return {"resource": resource, **({"accelerator": accelerator} if accelerator else {})}


def wait_refused(api, namespace: str, pod: dict, timeout: float = 30) -> str:
    """The policy, binding and parameters take effect a moment after they are created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            dry_run(api, namespace, pod)
        except ApiError as exc:
            if "teamhub rule" in str(exc):
                return exc.body["message"]
        assert time.monotonic() < deadline, "the admission policy never refused a foreign pod"
        time.sleep(0.3)


def wait_admitted(api, namespace: str, pod: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            dry_run(api, namespace, pod)
            return
        except ApiError as exc:
            assert time.monotonic() < deadline, f"never admitted: {exc}"
        time.sleep(0.3)


def plain_namespace(cluster, hint: str) -> str:
    """A namespace without Pod Security enforcement: what is refused there is refused by the policy alone."""
    name = f"{hint}-{int(time.time() * 1000) % 100000:05d}"
    cluster.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.plane.wait_until(lambda: cluster.api.ok(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30, name)
    return name


@pytest.fixture(scope="module")
def guarded(cluster):
    """A namespace with the hub's ServiceAccount and Role and the chart's policy, as the chart renders them
    (no Pod Security enforcement, so every refusal below is the policy's own)."""
    ns = plain_namespace(cluster, "admission")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=render(cluster, ns, "templates/hub/rbac.yaml"))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=render(cluster, ns, "templates/admission/policy.yaml"))
    hub = cluster.service_account_api(ns, HUB)
    foreign = copy.deepcopy(manifests(ns, ADMIN, options("cpu-small", None))[0])
    foreign["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1.37"
    wait_refused(hub, ns, foreign)
    yield {"ns": ns, "hub": hub}
    cluster.delete_namespace(ns)
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        cluster.kubectl("delete", kind, f"{ns}-{RELEASE}-user-pods", "--ignore-not-found")


@pytest.mark.parametrize(("resource", "accelerator"), placements())
def test_every_catalog_pod_is_admitted(guarded, resource, accelerator):
    ns = guarded["ns"]
    pod, _ = manifests(ns, ADMIN, options(resource, accelerator))
    created = dry_run(guarded["hub"], ns, pod)
    assert created["metadata"]["labels"]["teamhub.dev/resource"] == resource


def test_a_team_members_pod_is_admitted(guarded):
    ns = guarded["ns"]
    pod, _ = manifests(ns, "local:alice", {"resource": "course-cv", "accelerator": "strix-halo"})
    assert pod["metadata"]["labels"]["teamhub.dev/team"] == "cv-course"
    dry_run(guarded["hub"], ns, pod)


def _c(pod):
    return pod["spec"]["containers"][0]


def _set(path: str, value):
    def change(pod):
        *parents, last = path.split(".")
        node = pod
        for p in parents:
            node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
        node[last] = value
    return change


def _drop(path: str):
    def change(pod):
        *parents, last = path.split(".")
        node = pod
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]
    return change


def _add_volume(volume: dict, mount: dict):
    def change(pod):
        pod["spec"]["volumes"].append(volume)
        _c(pod)["volumeMounts"].append(mount)
    return change


def _tolerate(pod):
    pod["spec"].setdefault("tolerations", []).append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})


def _gpu_plus_one(pod):
    _c(pod)["resources"]["limits"]["amd.com/gpu"] = "2"


def _second_gpu_kind(pod):
    _c(pod)["resources"]["limits"]["nvidia.com/gpu"] = "1"


def _privileged(pod):
    _c(pod)["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)


def _other_home(pod):
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-local-bob"


# One hand-made pod per rule: the course-cv pod on strix-halo as the hub builds it, one field changed.
BROKEN = {
    "foreign image": ("image", _set("spec.containers.0.image", "docker.io/library/busybox:1.37")),
    "pull policy": ("image", _set("spec.containers.0.imagePullPolicy", "Always")),
    "pull secret": ("pullSecrets", _set("spec.imagePullSecrets", [{"name": "someone-elses"}])),
    "+1 GPU": ("gpu", _gpu_plus_one),
    "another extended resource": ("gpu", _second_gpu_kind),
    "more CPU": ("cpu", _set("spec.containers.0.resources.requests.cpu", "5")),
    "more memory": ("memory", _set("spec.containers.0.resources.limits.memory", "64Gi")),
    "other node selector": ("nodeSelector", _set("spec.nodeSelector", {"node-type": "mi300x"})),
    "extra toleration": ("tolerations", _tolerate),
    "node name": ("host", _set("spec.nodeName", "mi300x-1")),
    "host network": ("host", _set("spec.hostNetwork", True)),
    "host PID": ("host", _set("spec.hostPID", True)),
    "hostPath": ("volumes", _add_volume({"name": "root", "hostPath": {"path": "/"}}, {"name": "root", "mountPath": "/host"})),
    "emptyDir": ("volumes", _add_volume({"name": "scratch", "emptyDir": {}}, {"name": "scratch", "mountPath": "/scratch"})),
    "someone else's home": ("volumes", _other_home),
    "writable data set": ("volumes", _set("spec.volumes.1.persistentVolumeClaim.readOnly", False)),
    "data set elsewhere": ("volumeMounts", _set("spec.containers.0.volumeMounts.1.mountPath", "/etc")),
    "privileged": ("security", _privileged),
    "privilege escalation": ("security", _set("spec.containers.0.securityContext.allowPrivilegeEscalation", True)),
    "added capability": ("security", _set("spec.containers.0.securityContext.capabilities.add", ["NET_ADMIN"])),
    "root": ("user", _set("spec.containers.0.securityContext.runAsUser", 0)),
    "service account token": ("serviceAccount", _set("spec.automountServiceAccountToken", True)),
    "hub's service account": ("serviceAccount", _set("spec.serviceAccountName", HUB)),
    "missing deadline": ("deadline", _drop("spec.activeDeadlineSeconds")),
    "deadline too far": ("deadline", _set("spec.activeDeadlineSeconds", 14401)),
    # the resource names no PriorityClass: its servers may not outrank the default
    "outranks the default": ("priority", _set("spec.priorityClassName", "system-cluster-critical")),
    "wrong team label": ("labels", _set("metadata.labels.teamhub\x00dev/team", "nlp-course")),
    "not a server": ("labels", _set("metadata.labels.app\x00kubernetes\x00io/component", "hub")),
    "unknown resource": ("shape", _set("metadata.labels.teamhub\x00dev/resource", "gpu-huge")),
    "second container": ("containers", lambda pod: pod["spec"]["containers"].append({**_c(pod), "name": "side"})),
}


def _broken(ns: str, change) -> dict:
    pod, _ = manifests(ns, ADMIN, {"resource": "course-cv", "accelerator": "strix-halo"})
    pod = copy.deepcopy(pod)
    change(pod)
    # label keys hold dots: the table writes them with NUL for "." so _set's path stays one string
    pod["metadata"]["labels"] = {k.replace("\x00", "."): v for k, v in pod["metadata"]["labels"].items()}
    return pod


@pytest.fixture(scope="module")
def unguarded(cluster):
    """Another namespace, without Pod Security enforcement, where only the admin creates pods."""
    name = plain_namespace(cluster, "admission-free")
    cluster.kubectl("create", "serviceaccount", HUB, "-n", name)  # for the pod naming the hub's account
    yield name
    cluster.delete_namespace(name)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_pod_breaking_one_rule_is_refused_with_its_rule(cluster, guarded, unguarded, case):
    rule, change = BROKEN[case]
    ns = guarded["ns"]
    message = refusal(guarded["hub"], ns, _broken(ns, change))
    assert "ValidatingAdmissionPolicy" in message, message
    assert f"teamhub rule {rule}:" in message, message
    assert podrefusal.policy_rule(message)[0] == rule  # the hub recognises the real answer (its sentence: unit tier)
    # the same pod, as a cluster admin in another namespace: the policy does not apply
    pod = _broken(unguarded, change)
    dry_run(cluster.api, unguarded, pod)


def test_the_admin_is_not_bound_by_the_policy_in_the_release_namespace(cluster, guarded):
    ns = guarded["ns"]
    dry_run(cluster.api, ns, _broken(ns, BROKEN["foreign image"][1]))


# --- upgrade and rollback change what is admitted ---------------------------------------------
EXTRA = {"catalog": {"resources": {"cpu-tiny": {"displayName": "Python (1 CPU)", "image": "scipy",
                                                "cpu": {"request": 1, "limit": 1}, "memory": {"request": "2Gi"}}},
                     "teams": {"everyone": {"resources": ["cpu-small", "cpu-tiny"]}}}}


def test_an_upgrade_adding_a_resource_admits_its_pods_and_a_rollback_refuses_them(cluster, namespace, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump(EXTRA))
    merged = tmp_path / "values.yaml"  # what the hub reads after the upgrade, for building its pod
    base = yaml.safe_load((CONFIG / "values.yaml").read_text())
    base["catalog"]["resources"].update(EXTRA["catalog"]["resources"])
    base["catalog"]["teams"]["everyone"]["resources"] = EXTRA["catalog"]["teams"]["everyone"]["resources"]
    merged.write_text(yaml.safe_dump(base))
    for claim in ("imagenet-data", "course-materials"):
        cluster.api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
                           {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
                            "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}})

    install(cluster, "helm3", namespace)
    hub = cluster.service_account_api(namespace, HUB)
    pod, _ = manifests(namespace, "local:alice", {"resource": "cpu-tiny"}, values=merged)
    assert "teamhub rule shape:" in wait_refused(hub, namespace, pod)

    install(cluster, "helm3", namespace, "-f", extra)
    wait_admitted(hub, namespace, pod)

    cluster.helm("helm3", "rollback", RELEASE, "1", "-n", namespace, "--wait", "--timeout=3m")
    assert "teamhub rule shape:" in wait_refused(hub, namespace, pod)
    cluster.helm("helm3", "uninstall", RELEASE, "-n", namespace, "--wait")


# --- every values file: each placement's pod admitted, the same pod with one field changed refused ----
CATALOG_FILES = [p for p in sorted(CONFIG.glob("*.yaml")) + sorted((CONFIG / "examples").glob("*.yaml"))
                 if not p.name.startswith("chart-")]  # chart-* examples hold chart settings only


def _one_field_changes(pod: dict, max_seconds: int) -> dict:
    """rule -> the pod with one field of that rule changed."""
    def changed(fn):
        p = copy.deepcopy(pod)
        fn(p)
        return p

    limits = _c(pod)["resources"].get("limits", {})
    gpu = next((k for k in limits if k not in ("cpu", "memory")), None)
    return {
        "image": changed(lambda p: _c(p).update(image=_c(p)["image"] + "-other")),
        # less than any catalog request, so still within the limits (validation checks that first)
        "cpu": changed(lambda p: _c(p)["resources"]["requests"].update(cpu="1m")),
        "memory": changed(lambda p: _c(p)["resources"]["requests"].update(memory="1Ki")),
        "gpu": changed(lambda p: _c(p)["resources"].setdefault("limits", {}).update(
            {gpu or "nvidia.com/gpu": str(int(limits.get(gpu, 0)) + 1)})),
        "nodeSelector": changed(lambda p: p["spec"].setdefault("nodeSelector", {}).update({"teamhub-test": "other"})),
        "tolerations": changed(lambda p: p["spec"].setdefault("tolerations", []).append(
            {"key": "teamhub-test", "operator": "Exists"})),
        "deadline": changed(lambda p: p["spec"].update(activeDeadlineSeconds=max_seconds + 1)),
        "priority": changed(lambda p: p["spec"].update(priorityClassName="system-cluster-critical")),
        "labels": changed(lambda p: p["metadata"]["labels"].update({"teamhub.dev/team": "no-such-team"})),
    }


@pytest.mark.parametrize("values", CATALOG_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_every_placement_of_every_values_file(cluster, values, monkeypatch):
    for method in ("GITHUB", "OIDC"):  # as the chart passes a client secret from an existingSecret
        monkeypatch.setenv(f"TEAMHUB_{method}_CLIENT_SECRET", "from-the-secret")
    ns = plain_namespace(cluster, "admission-" + values.stem)
    name = f"{ns}-{RELEASE}-user-pods"
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=render(cluster, ns, "templates/hub/rbac.yaml", values=(values,)))
        cluster.kubectl("apply", "-n", ns, "-f", "-",
                        input=render(cluster, ns, "templates/admission/policy.yaml", values=(values,)))
        hub = cluster.service_account_api(ns, HUB)
        checked = load_or_raise([values])
        admin = sorted(checked.catalog.admins)[0]
        first = True
        for resource, accelerator in placements(values):
            pod, _ = manifests(ns, admin, options(resource, accelerator), values=values)
            if first:  # the policy takes effect a moment after it is created
                wait_refused(hub, ns, _one_field_changes(pod, 0)["image"])
                first = False
            dry_run(hub, ns, pod)
            max_seconds = checked.catalog.resource_limit_minutes(checked.catalog.resources[resource]) * 60
            for rule, broken in _one_field_changes(pod, max_seconds).items():
                assert f"teamhub rule {rule}:" in refusal(hub, ns, broken), (resource, accelerator, rule)
    finally:
        cluster.delete_namespace(ns)
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cluster.kubectl("delete", kind, name, "--ignore-not-found")


def test_the_api_server_type_checks_every_expression_without_warnings(cluster, guarded):
    path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{guarded['ns']}-{RELEASE}-user-pods"
    cluster.plane.wait_until(lambda: "typeChecking" in cluster.api.get(path).get("status", {}), 30, "the policy's type check")
    status = cluster.api.get(path)["status"]
    assert not status["typeChecking"].get("expressionWarnings"), status
