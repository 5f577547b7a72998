"""The cluster refuses any pod the catalog does not allow when the hub's ServiceAccount creates it
(issue 16): the chart's ValidatingAdmissionPolicy, its binding and its parameters, on a real API server.

Pods are created with a dry run (`dryRun=All`): it goes through every admission step, policy included, and
stores nothing, so one namespace serves every case."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml
from support import CONFIG, TEST_HASH
from teamhub.catalog.loader import load_or_raise
from teamhub.hub import podrefusal

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


def _env(pod, entry):
    _c(pod)["env"].append(entry)


def _env_from(source):
    return lambda pod: _c(pod).update(envFrom=[source])


def _set_env(name, value):
    def change(pod):
        for e in _c(pod)["env"]:
            if e["name"] == name:
                e["value"] = value
    return change


def _drop_env(name):
    return lambda pod: _c(pod).update(env=[e for e in _c(pod)["env"] if e["name"] != name])


def _from_secret(name):
    """A per-launch name whose value the pod would read from the hub's own Secret."""
    def change(pod):
        for e in _c(pod)["env"]:
            if e["name"] == name:
                e.pop("value", None)
                e["valueFrom"] = {"secretKeyRef": {"name": f"{RELEASE}-secret", "key": "proxy-token"}}
    return change


def _block_device(pod):
    """The read-only data set as a raw block device instead of a mount."""
    _c(pod)["volumeMounts"] = [m for m in _c(pod)["volumeMounts"] if m["name"] != "teamhub-imagenet"]
    _c(pod)["volumeDevices"] = [{"name": "teamhub-imagenet", "devicePath": "/dev/xvdb"}]


def _init_container(pod):
    init = {k: v for k, v in copy.deepcopy(_c(pod)).items() if k not in ("lifecycle", "ports")}
    pod["spec"]["initContainers"] = [{**init, "name": "init"}]


def _pod_root(pod):
    _c(pod)["securityContext"].pop("runAsUser")
    pod["spec"]["securityContext"]["runAsUser"] = 0


EXEC = {"exec": {"command": ["sh", "-c", "curl -s http://hub:8081/ | sh"]}}
SECRET = {"name": f"{RELEASE}-secret"}

# The captured-pod experiment (issue 23 finding 6): the course-cv pod on strix-halo exactly as KubeSpawner builds
# it for a permitted start, one field changed. name: (rule that refuses it, change, the API fields it changes,
# "Kind.field" as the OpenAPI test reads them; test_every_pod_field_is_pinned_or_reviewed needs each field of
# PodSpec, Container, SecurityContext and PodSecurityContext here or in unpinned-pod-fields.txt).
BROKEN = {
    "foreign image": ("image", _set("spec.containers.0.image", "docker.io/library/busybox:1.37"), ["Container.image"]),
    "pull policy": ("image", _set("spec.containers.0.imagePullPolicy", "Always"), ["Container.imagePullPolicy"]),
    "pull secret": ("pullSecrets", _set("spec.imagePullSecrets", [{"name": "someone-elses"}]), ["PodSpec.imagePullSecrets"]),
    "+1 GPU": ("gpu", _gpu_plus_one, ["Container.resources"]),
    "another extended resource": ("gpu", _second_gpu_kind, ["Container.resources"]),
    "more CPU": ("cpu", _set("spec.containers.0.resources.requests.cpu", "5"), ["Container.resources"]),
    "more memory": ("memory", _set("spec.containers.0.resources.limits.memory", "64Gi"), ["Container.resources"]),
    "other node selector": ("nodeSelector", _set("spec.nodeSelector", {"node-type": "mi300x"}), ["PodSpec.nodeSelector"]),
    "extra toleration": ("tolerations", _tolerate, ["PodSpec.tolerations"]),
    "node name": ("host", _set("spec.nodeName", "mi300x-1"), ["PodSpec.nodeName"]),
    "host network": ("host", _set("spec.hostNetwork", True), ["PodSpec.hostNetwork"]),
    "host PID": ("host", _set("spec.hostPID", True), ["PodSpec.hostPID"]),
    "host IPC": ("host", _set("spec.hostIPC", True), ["PodSpec.hostIPC"]),
    "host port": ("host", _set("spec.containers.0.ports.0.hostPort", 8888), ["Container.ports"]),
    "hostPath": ("volumes", _add_volume({"name": "root", "hostPath": {"path": "/"}}, {"name": "root", "mountPath": "/host"}), ["PodSpec.volumes"]),
    "emptyDir": ("volumes", _add_volume({"name": "scratch", "emptyDir": {}}, {"name": "scratch", "mountPath": "/scratch"}), ["PodSpec.volumes"]),
    "the hub's Secret as a volume": ("volumes", _add_volume({"name": "s", "secret": {"secretName": SECRET["name"]}}, {"name": "s", "mountPath": "/s"}), ["PodSpec.volumes"]),
    "a ConfigMap volume": ("volumes", _add_volume({"name": "c", "configMap": {"name": f"{RELEASE}-admission"}}, {"name": "c", "mountPath": "/c"}), ["PodSpec.volumes"]),
    "a projected token": ("volumes", _add_volume({"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}, {"name": "t", "mountPath": "/t"}), ["PodSpec.volumes"]),
    "an NFS export": ("volumes", _add_volume({"name": "n", "nfs": {"server": "10.0.0.5", "path": "/"}}, {"name": "n", "mountPath": "/n"}), ["PodSpec.volumes"]),
    "a catalog claim under another name": ("volumes", _add_volume({"name": "teamhub-x", "persistentVolumeClaim": {"claimName": "imagenet-data"}}, {"name": "teamhub-x", "mountPath": "/x"}), ["PodSpec.volumes"]),
    "someone else's home": ("volumes", _other_home, ["PodSpec.volumes"]),
    "writable data set": ("volumes", _set("spec.volumes.1.persistentVolumeClaim.readOnly", False), ["PodSpec.volumes"]),
    "data set elsewhere": ("volumeMounts", _set("spec.containers.0.volumeMounts.1.mountPath", "/etc"), ["Container.volumeMounts"]),
    "data set writable mount": ("volumeMounts", _set("spec.containers.0.volumeMounts.1.readOnly", False), ["Container.volumeMounts"]),
    "home subPath": ("volumeMounts", _set("spec.containers.0.volumeMounts.0.subPath", "other"), ["Container.volumeMounts"]),
    "raw block device": ("scheduling", _block_device, ["Container.volumeDevices"]),
    "privileged": ("security", _privileged, ["SecurityContext.privileged", "Container.securityContext"]),
    "privilege escalation": ("security", _set("spec.containers.0.securityContext.allowPrivilegeEscalation", True), ["SecurityContext.allowPrivilegeEscalation"]),
    "added capability": ("security", _set("spec.containers.0.securityContext.capabilities.add", ["NET_ADMIN"]), ["SecurityContext.capabilities"]),
    "capabilities kept": ("security", _set("spec.containers.0.securityContext.capabilities.drop", []), ["SecurityContext.capabilities"]),
    "container seccomp unconfined": ("security", _set("spec.containers.0.securityContext.seccompProfile", {"type": "Unconfined"}), ["SecurityContext.seccompProfile"]),
    "pod seccomp unconfined": ("security", _set("spec.securityContext.seccompProfile", {"type": "Unconfined"}),
                               ["PodSecurityContext.seccompProfile", "PodSpec.securityContext"]),
    "container may run as root": ("security", _set("spec.containers.0.securityContext.runAsNonRoot", False), ["SecurityContext.runAsNonRoot"]),
    "pod may run as root": ("security", _set("spec.securityContext.runAsNonRoot", False), ["PodSecurityContext.runAsNonRoot"]),
    "supplemental group 0": ("security", _set("spec.securityContext.supplementalGroups", [0]), ["PodSecurityContext.supplementalGroups"]),
    "sysctl": ("security", _set("spec.securityContext.sysctls", [{"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}]), ["PodSecurityContext.sysctls"]),
    "pod SELinux type": ("security", _set("spec.securityContext.seLinuxOptions", {"type": "spc_t"}), ["PodSecurityContext.seLinuxOptions"]),
    "container SELinux type": ("security", _set("spec.containers.0.securityContext.seLinuxOptions", {"type": "spc_t"}), ["SecurityContext.seLinuxOptions"]),
    "pod Windows options": ("security", _set("spec.securityContext.windowsOptions", {"runAsUserName": "ContainerAdministrator"}), ["PodSecurityContext.windowsOptions"]),
    "container Windows options": ("security", _set("spec.containers.0.securityContext.windowsOptions", {"runAsUserName": "ContainerAdministrator"}), ["SecurityContext.windowsOptions"]),
    "pod AppArmor unconfined": ("security", _set("spec.securityContext.appArmorProfile", {"type": "Unconfined"}), ["PodSecurityContext.appArmorProfile"]),
    "container AppArmor unconfined": ("security", _set("spec.containers.0.securityContext.appArmorProfile", {"type": "Unconfined"}), ["SecurityContext.appArmorProfile"]),
    # Unmasked needs hostUsers: false (API validation), which the namespaces rule refuses too; security comes first
    "unmasked /proc": ("security", lambda pod: (pod["spec"].update(hostUsers=False), _c(pod)["securityContext"].update(procMount="Unmasked")),
                       ["SecurityContext.procMount"]),
    "root": ("user", _set("spec.containers.0.securityContext.runAsUser", 0), ["SecurityContext.runAsUser"]),
    "group root": ("user", _set("spec.containers.0.securityContext.runAsGroup", 0), ["SecurityContext.runAsGroup"]),
    "pod root": ("user", _pod_root, ["PodSecurityContext.runAsUser"]),
    "pod group root": ("user", lambda pod: (_c(pod)["securityContext"].pop("runAsGroup"), pod["spec"]["securityContext"].update(runAsGroup=0)), ["PodSecurityContext.runAsGroup"]),
    "fsGroup root": ("user", _set("spec.securityContext.fsGroup", 0), ["PodSecurityContext.fsGroup"]),
    "service account token": ("serviceAccount", _set("spec.automountServiceAccountToken", True), ["PodSpec.automountServiceAccountToken"]),
    "hub's service account": ("serviceAccount", _set("spec.serviceAccountName", HUB), ["PodSpec.serviceAccountName"]),
    "hub's service account, old field": ("serviceAccount", _set("spec.serviceAccount", HUB), ["PodSpec.serviceAccount"]),
    "missing deadline": ("deadline", _drop("spec.activeDeadlineSeconds"), ["PodSpec.activeDeadlineSeconds"]),
    "deadline too far": ("deadline", _set("spec.activeDeadlineSeconds", 14401), ["PodSpec.activeDeadlineSeconds"]),
    "wrong team label": ("labels", _set("metadata.labels.teamhub\x00dev/team", "nlp-course"), []),
    "not a server": ("labels", _set("metadata.labels.app\x00kubernetes\x00io/component", "hub"), []),
    "unknown resource": ("shape", _set("metadata.labels.teamhub\x00dev/resource", "gpu-huge"), []),
    "second container": ("containers", lambda pod: pod["spec"]["containers"].append({**_c(pod), "name": "side"}), ["PodSpec.containers"]),
    "init container": ("containers", _init_container, ["PodSpec.initContainers"]),
    # the environment: the catalog's values exactly, the hub's per-launch names plain, nothing from Secrets
    "envFrom the hub's Secret": ("env", _env_from({"secretRef": SECRET}), ["Container.envFrom"]),
    "envFrom a ConfigMap": ("env", _env_from({"configMapRef": {"name": f"{RELEASE}-admission"}}), ["Container.envFrom"]),
    "env from a secretKeyRef": ("env", lambda pod: _env(pod, {"name": "T", "valueFrom": {"secretKeyRef": {**SECRET, "key": "proxy-token"}}}), ["Container.env"]),
    "env from a configMapKeyRef": ("env", lambda pod: _env(pod, {"name": "C", "valueFrom": {"configMapKeyRef": {"name": f"{RELEASE}-admission", "key": "home"}}}), ["Container.env"]),
    "env from a fieldRef": ("env", lambda pod: _env(pod, {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}), ["Container.env"]),
    "a per-launch name from a Secret": ("env", _from_secret("JUPYTERHUB_API_TOKEN"), ["Container.env"]),
    "LD_PRELOAD": ("env", lambda pod: _env(pod, {"name": "LD_PRELOAD", "value": "/home/jovyan/x.so"}), ["Container.env"]),
    "PYTHONSTARTUP": ("env", lambda pod: _env(pod, {"name": "PYTHONSTARTUP", "value": "/tmp/x.py"}), ["Container.env"]),
    "every NVIDIA GPU visible": ("env", _set_env("NVIDIA_VISIBLE_DEVICES", "all"), ["Container.env"]),
    "GPU visibility dropped": ("env", _drop_env("NVIDIA_VISIBLE_DEVICES"), ["Container.env"]),
    "catalog variable changed": ("env", _set_env("HSA_OVERRIDE_GFX_VERSION", "9.0.0"), ["Container.env"]),
    "catalog variable twice": ("env", lambda pod: _env(pod, {"name": "HSA_OVERRIDE_GFX_VERSION", "value": "9.0.0"}), ["Container.env"]),
    # what runs, and when: the image's own command only
    "command": ("command", _set("spec.containers.0.command", ["sh", "-c", "id"]), ["Container.command"]),
    "args": ("command", _set("spec.containers.0.args", ["--ServerApp.token="]), ["Container.args"]),
    "working directory": ("command", _set("spec.containers.0.workingDir", "/tmp"), ["Container.workingDir"]),
    "postStart exec": ("hooks", _set("spec.containers.0.lifecycle", {"postStart": EXEC}), ["Container.lifecycle"]),
    "preStop exec": ("hooks", _set("spec.containers.0.lifecycle", {"preStop": EXEC}), ["Container.lifecycle"]),
    "readiness exec probe": ("hooks", _set("spec.containers.0.readinessProbe", EXEC), ["Container.readinessProbe"]),
    "liveness exec probe": ("hooks", _set("spec.containers.0.livenessProbe", EXEC), ["Container.livenessProbe"]),
    "startup probe": ("hooks", _set("spec.containers.0.startupProbe", {"httpGet": {"host": "10.0.0.1", "path": "/", "port": 80}}), ["Container.startupProbe"]),
    # a better place on the node, another runtime, another scheduler
    "system-node-critical": ("priority", _set("spec.priorityClassName", "system-node-critical"), ["PodSpec.priorityClassName"]),
    "system-cluster-critical": ("priority", _set("spec.priorityClassName", "system-cluster-critical"), ["PodSpec.priorityClassName"]),
    "another scheduler": ("scheduling", _set("spec.schedulerName", "my-scheduler"), ["PodSpec.schedulerName"]),
    "another runtime": ("scheduling", _set("spec.runtimeClassName", "teamhub-test-runtime"), ["PodSpec.runtimeClassName"]),
    "pod-level resources": ("scheduling", _set("spec.resources", {"requests": {"cpu": "60"}}), ["PodSpec.resources"]),
    "a resource claim": ("devices", _set("spec.resourceClaims", [{"name": "gpu", "resourceClaimName": "someone-gpu-x1"}]), ["PodSpec.resourceClaims"]),
    "host user namespace off": ("namespaces", _set("spec.hostUsers", False), ["PodSpec.hostUsers"]),
    "host aliases": ("namespaces", _set("spec.hostAliases", [{"ip": "10.0.0.66", "hostnames": ["github.com"]}]), ["PodSpec.hostAliases"]),
    "node's DNS": ("namespaces", _set("spec.dnsPolicy", "Default"), ["PodSpec.dnsPolicy"]),
    "own DNS server": ("namespaces", _set("spec.dnsConfig", {"nameservers": ["203.0.113.53"]}), ["PodSpec.dnsConfig"]),
    "long grace period": ("grace", _set("spec.terminationGracePeriodSeconds", 86400), ["PodSpec.terminationGracePeriodSeconds"]),
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


RUNTIME_CLASS = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "teamhub-test-runtime"},
                 "handler": "runsc"}


@pytest.fixture(scope="module")
def runtime_class(cluster):
    """The RuntimeClass admission plugin refuses a pod naming a class that does not exist: one that does."""
    if not cluster.api.ok("/apis/node.k8s.io/v1/runtimeclasses/teamhub-test-runtime"):
        cluster.api.create("/apis/node.k8s.io/v1/runtimeclasses", RUNTIME_CLASS)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_pod_breaking_one_rule_is_refused_with_its_rule(cluster, guarded, unguarded, runtime_class, case):
    rule, change, _ = BROKEN[case]
    ns = guarded["ns"]
    message = refusal(guarded["hub"], ns, _broken(ns, change))
    assert "ValidatingAdmissionPolicy" in message, message
    assert f"teamhub rule {rule}:" in message, message
    assert podrefusal.policy_rule(message)[0] == rule  # the hub recognises the real answer (its sentence: unit tier)
    # the same pod, as a cluster admin in another namespace: the policy does not apply, so the change itself is
    # one the API server admits (the experiment can fail)
    pod = _broken(unguarded, change)
    dry_run(cluster.api, unguarded, pod)


def test_the_admin_is_not_bound_by_the_policy_in_the_release_namespace(cluster, guarded):
    ns = guarded["ns"]
    dry_run(cluster.api, ns, _broken(ns, BROKEN["foreign image"][1]))


def test_the_captured_pod_is_admitted(guarded):
    """The experiment's starting point: the unchanged pod of a permitted start, with the hub's own token."""
    ns = guarded["ns"]
    dry_run(guarded["hub"], ns, _broken(ns, lambda pod: None))


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
        # another pod's generated claim, by name: it would share that person's device (issue 27)
        "devices": changed(lambda p: p["spec"].update(resourceClaims=[{"name": "teamhub-devices",
                                                                       "resourceClaimName": "teamhub-someone-teamhub-devices-x1"}])),
    }


@pytest.mark.parametrize("values", CATALOG_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_every_placement_of_every_values_file(cluster, values, monkeypatch, tmp_path):
    for method in ("GITHUB", "OIDC"):  # as the chart passes a client secret from an existingSecret
        monkeypatch.setenv(f"TEAMHUB_{method}_CLIENT_SECRET", "from-the-secret")
    ns = plain_namespace(cluster, "admission-" + values.stem)
    values = with_admin_in(values, ns, tmp_path)
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
            # the hub's environment as the chart renders it: the user scheduler's name for resources with userScheduler
            pod, _ = manifests(ns, admin, options(resource, accelerator), values=values,
                               environ={"TEAMHUB_USER_SCHEDULER": f"{RELEASE}-user-scheduler"})
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


def with_admin_in(values: Path, namespace: str, tmp_path: Path) -> Path:
    """The values file as the test needs it: an admin who may start every placement (config/values.yaml ships
    with no accounts), and the servers' namespace the test's own (singleuser.namespace names another)."""
    data = yaml.safe_load(values.read_text())
    auth = data.setdefault("auth", {})
    if not auth.get("admins"):
        auth["admins"] = ["local:admin"]
        auth.setdefault("local", {}).setdefault("users", {})["admin"] = {"passwordHash": TEST_HASH}
    if (data.get("singleuser") or {}).get("namespace"):
        data["singleuser"]["namespace"] = namespace
    out = tmp_path / values.name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def test_the_api_server_type_checks_every_expression_without_warnings(cluster, guarded):
    path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{guarded['ns']}-{RELEASE}-user-pods"
    cluster.plane.wait_until(lambda: "typeChecking" in cluster.api.get(path).get("status", {}), 30, "the policy's type check")
    status = cluster.api.get(path)["status"]
    assert not status["typeChecking"].get("expressionWarnings"), status


# --- every field of a pod is pinned by the policy or reviewed -------------------------------------
UNPINNED = Path(__file__).with_name("unpinned-pod-fields.txt")
KINDS = ("PodSpec", "Container", "SecurityContext", "PodSecurityContext")


def unpinned() -> dict[str, str]:
    """"Kind.field" -> why it cannot widen what a server may do (tests/cluster/unpinned-pod-fields.txt)."""
    out = {}
    for line in UNPINNED.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            field, _, reason = line.partition(" ")
            assert reason.strip(), f"{UNPINNED.name}: {field} has no reason"
            out[field] = reason.strip()
    return out


def test_every_pod_field_is_pinned_or_reviewed(cluster):
    """Issue 23: the API server's own OpenAPI lists the fields; each is changed by a case of the experiment above
    (so the policy is shown to refuse it) or listed, with a reason, as unable to widen a pod's rights. A field a
    new Kubernetes adds fails here until someone decides which."""
    schemas = cluster.api.get("/openapi/v3/api/v1")["components"]["schemas"]
    served = {f"{kind}.{name}" for kind in KINDS for name in schemas[f"io.k8s.api.core.v1.{kind}"]["properties"]}
    pinned = {f for _, _, fields in BROKEN.values() for f in fields}
    reviewed = unpinned()
    assert not pinned & set(reviewed), f"both pinned and listed as unpinned: {sorted(pinned & set(reviewed))}"
    assert not served - pinned - set(reviewed), (
        f"fields neither pinned by the admission policy nor reviewed in {UNPINNED.name}: {sorted(served - pinned - set(reviewed))}")
    assert not set(reviewed) - served, f"{UNPINNED.name} lists fields this API server does not serve: {sorted(set(reviewed) - served)}"
