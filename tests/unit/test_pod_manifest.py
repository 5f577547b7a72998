"""Every resource shape through KubeSpawner's real get_pod_manifest(), validated strictly."""

from __future__ import annotations

import asyncio

import kubernetes_validate
import pytest
from hubhelpers import configured, kube_spawner
from kubernetes_asyncio.client import ApiClient
from tornado import web

ADMIN = "local:ada"
SHAPES = [  # (resource, accelerator): CPU-only, fixed NVIDIA GPU, fixed 2x AMD GPU, accelerator with and without override
    ("cpu-small", None),
    ("cpu-large", None),
    ("course-nlp", None),
    ("research-gpu", None),
    ("course-cv", "strix-halo"),
    ("course-cv", "mi300x"),
]


def manifest(sp, options):
    async def go():
        await sp.teamhub_apply(options)
        pod = await sp.get_pod_manifest()
        async with ApiClient() as api:
            return api.sanitize_for_serialization(pod)

    return asyncio.run(go())


def container(pod):
    return pod["spec"]["containers"][0]


def env_of(pod):
    return {e["name"]: e.get("value") for e in container(pod).get("env", [])}


@pytest.fixture
def c():
    return configured()


@pytest.mark.parametrize(("resource", "accelerator"), SHAPES)
def test_pod_is_valid_kubernetes(c, resource, accelerator):
    options = {"resource": resource, "sessionMinutes": 60}
    if accelerator:
        options["accelerator"] = accelerator
    pod = manifest(kube_spawner(c, ADMIN, admin=True), options)
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    assert pod["spec"]["activeDeadlineSeconds"] == 3600
    labels = pod["metadata"]["labels"]
    assert labels["teamhub.dev/resource"] == resource
    if accelerator:
        assert labels["teamhub.dev/accelerator"] == accelerator
    else:
        assert "teamhub.dev/accelerator" not in labels
    env = env_of(pod)
    assert env["TEAMHUB_SESSION_MINUTES"] == "60"
    assert env["TEAMHUB_SESSION_END"].endswith("Z")


def test_cpu_only_pod_sees_no_gpu(c):
    pod = manifest(kube_spawner(c), {"resource": "cpu-small"})
    res = container(pod)["resources"]
    assert {k: float(v) for k, v in res["requests"].items()} == {"cpu": 2.0, "memory": 4 * 2**30}
    assert {k: float(v) for k, v in res["limits"].items()} == {"cpu": 4.0, "memory": 6 * 2**30}
    env = env_of(pod)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none"
    assert env["ROCR_VISIBLE_DEVICES"] == "-1" and env["HIP_VISIBLE_DEVICES"] == "-1"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert container(pod)["image"] == "quay.io/jupyter/scipy-notebook:2026-11-02"
    assert container(pod)["imagePullPolicy"] == "IfNotPresent"
    assert not pod["spec"].get("nodeSelector")
    assert pod["metadata"]["labels"]["teamhub.dev/team"] == "everyone"


def test_accelerator_brings_gpu_selector_env_and_override_image(c):
    pod = manifest(kube_spawner(c), {"resource": "course-cv", "accelerator": "strix-halo", "sessionMinutes": "90"})
    assert container(pod)["image"] == "ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2-gfx1151"
    assert container(pod)["resources"]["limits"]["amd.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"node-type": "strix-halo"}
    env = env_of(pod)
    assert env["HSA_OVERRIDE_GFX_VERSION"] == "11.5.1"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none" and "ROCR_VISIBLE_DEVICES" not in env
    assert pod["metadata"]["labels"]["teamhub.dev/team"] == "cv-course"
    mounts = {m["mountPath"]: m for m in container(pod)["volumeMounts"]}
    assert mounts["/data/imagenet"]["readOnly"] is True and mounts["/data/course"]["readOnly"] is True
    assert "/home/jovyan" in mounts
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert {"imagenet-data", "course-materials"} <= claims
    assert pod["spec"]["activeDeadlineSeconds"] == 90 * 60


def test_mi300x_brings_toleration(c):
    pod = manifest(kube_spawner(c), {"resource": "course-cv", "accelerator": "mi300x"})
    assert {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert container(pod)["image"] == "ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2"


def test_clean_slate_between_spawns(c):
    sp = kube_spawner(c, ADMIN, admin=True)
    gpu = manifest(sp, {"resource": "research-gpu"})
    assert container(gpu)["resources"]["limits"]["amd.com/gpu"] == "2"
    cpu = manifest(sp, {"resource": "cpu-small"})
    assert "amd.com/gpu" not in container(cpu)["resources"]["limits"]
    assert not cpu["spec"].get("nodeSelector")
    assert not [t for t in cpu["spec"].get("tolerations", []) if t.get("key") == "amd.com/gpu"]
    assert [m["mountPath"] for m in container(cpu)["volumeMounts"]] == ["/home/jovyan"]
    assert "teamhub.dev/accelerator" not in cpu["metadata"]["labels"]
    assert env_of(cpu)["ROCR_VISIBLE_DEVICES"] == "-1"


def test_storage_settings_from_singleuser(tmp_path):
    """storage_settings reads values as the loader returns them: the schema's defaults filled in."""
    from teamhub.hub.config import storage_settings
    from teamhub.values.schema import with_defaults

    def settings(values):
        return storage_settings(with_defaults(values))

    assert settings({}) == {"enabled": True, "capacity": "10Gi", "storageClass": None, "mountPath": "/home/jovyan"}
    got = settings({"singleuser": {"storage": {"capacity": "50Gi", "storageClass": "fast", "homeMountPath": "/home/work"}}})
    assert got == {"enabled": True, "capacity": "50Gi", "storageClass": "fast", "mountPath": "/home/work"}
    assert settings({"singleuser": {"storage": {"storageClass": ""}}})["storageClass"] is None
    assert settings({"singleuser": {"storage": {"type": "none"}}})["enabled"] is False


REFUSED = [
    ({"resource": "course-nlp"}, 403),
    ({"resource": "nope"}, 400),
    ({"resource": "course-cv"}, 400),
    ({"resource": "cpu-small", "sessionMinutes": "99999"}, 400),
    ({"resource": "cpu-small", "gpu": "8"}, 400),
    ([], 400),
]


@pytest.mark.parametrize(("options", "status"), REFUSED)
def test_refused_requests_build_no_pod(c, monkeypatch, options, status):
    from teamhub.hub.podspawner import TeamhubKubeSpawner

    built = []

    async def spy(self):
        built.append(1)

    monkeypatch.setattr(TeamhubKubeSpawner, "get_pod_manifest", spy)
    sp = kube_spawner(c)

    async def go():
        # JupyterHub's own hook runner: HTTPError passes through with our status and message.
        await sp._run_apply_user_options(options)

    with pytest.raises(web.HTTPError) as info:
        asyncio.run(go())
    assert info.value.status_code == status
    assert info.value.jupyterhub_message
    assert built == []
    assert sp.teamhub_launch is None
    asyncio.run(sp.stop())  # JupyterHub calls stop after a failed start: nothing to delete, no API call


def test_state_roundtrip_keeps_deadline(c):
    sp = kube_spawner(c)
    asyncio.run(sp.teamhub_apply({"resource": "cpu-small", "sessionMinutes": 45}))
    state = sp.get_state()
    assert state["teamhub"]["minutes"] == 45
    again = kube_spawner(c)
    again.load_state(state)
    assert again.teamhub_deadline == sp.teamhub_deadline


def test_poll_stops_at_deadline(c, monkeypatch):
    """Past the deadline poll() ends the server itself (KubeSpawner's stop deletes the pod) before it reports
    it stopped; the pod deletion on a real API server is in tests/cluster."""
    from kubespawner import KubeSpawner

    stopped = []

    async def fake_stop(self, now=False):
        stopped.append(self._teamhub_stopping)

    monkeypatch.setattr(KubeSpawner, "stop", fake_stop)
    sp = kube_spawner(c)
    sp.load_state({"teamhub": {"deadline": 1.0, "minutes": 1, "resource": "cpu-small", "team": "everyone", "gpus": 0}})
    assert asyncio.run(sp.poll()) == 0
    assert stopped == [True]  # stopped once, marked as stopping so the stop's own poll does not recurse


def test_pods_carry_the_labels_the_charts_network_policies_select():
    chart_labels = '{"app.kubernetes.io/instance": "t", "app.kubernetes.io/name": "teamhub", "teamhub.dev/user-pod": "true"}'
    c = configured(environ={"TEAMHUB_USER_POD_LABELS": chart_labels})
    assert c.KubeSpawner.delete_pvc is False
    pod = manifest(kube_spawner(c), {"resource": "cpu-small"})
    labels = pod["metadata"]["labels"]
    assert labels["teamhub.dev/user-pod"] == "true" and labels["app.kubernetes.io/instance"] == "t"
    assert labels["app.kubernetes.io/component"] == "singleuser-server"  # the chart's selector expects it


def test_a_resources_priority_class_reaches_its_pod_and_no_other(tmp_path):
    """catalog resources' priorityClassName: the course's GPU servers rank above the rest; the class never
    sticks to the spawner's next start of a resource without one."""
    import yaml
    from hubhelpers import VALUES

    values = yaml.safe_load(VALUES.read_text())
    values["catalog"]["resources"]["course-nlp"]["priorityClassName"] = "course-gpu"
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    sp = kube_spawner(configured(path), ADMIN, admin=True)
    pod = manifest(sp, {"resource": "course-nlp"})
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    assert pod["spec"]["priorityClassName"] == "course-gpu"
    assert not manifest(sp, {"resource": "cpu-small"})["spec"].get("priorityClassName")


def test_with_the_queue_on_gpu_pods_wait_in_their_teams_line_and_impossible_ones_are_refused(tmp_path, monkeypatch):
    """Issue 26: the label Kueue reads goes on GPU pods only; a request no queue could ever admit is refused
    (403, its sentence) before any pod is built."""
    from support import CONFIG

    example = (CONFIG / "examples" / "gpu-queue.yaml").read_text(encoding="utf-8")
    values = tmp_path / "queue.yaml"
    values.write_text(example.replace("mi300x: {guaranteed: 0, max: 2}", "mi300x: {guaranteed: 0, max: 1}"), encoding="utf-8")
    c = configured(values)
    gpu = manifest(kube_spawner(c, "local:student1"), {"resource": "pytorch", "accelerator": "strix-halo"})
    assert gpu["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-cv-course"
    assert gpu["spec"]["nodeSelector"] == {"node-type": "strix-halo"}  # equal to the flavor's nodeLabels
    cpu = manifest(kube_spawner(c, "local:student1"), {"resource": "cpu-small"})
    assert "kueue.x-k8s.io/queue-name" not in cpu["metadata"]["labels"]
    other = manifest(kube_spawner(c, "local:researcher1"), {"resource": "pytorch", "accelerator": "mi300x"})
    assert other["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-vision-lab"

    from teamhub.hub.podspawner import TeamhubKubeSpawner

    built = []

    async def spy(self):
        built.append(1)

    monkeypatch.setattr(TeamhubKubeSpawner, "get_pod_manifest", spy)
    sp = kube_spawner(c, "local:student1")
    with pytest.raises(web.HTTPError) as info:
        asyncio.run(sp._run_apply_user_options({"resource": "pytorch", "accelerator": "mi300x"}))
    assert info.value.status_code == 403
    assert info.value.jupyterhub_message == ("PyTorch on a GPU needs 2 AMD Instinct MI300X GPUs, more than team cv-course "
                                             "may hold at once (1): it could never start.")
    assert built == [] and sp.teamhub_launch is None
