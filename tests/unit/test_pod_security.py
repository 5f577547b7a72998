"""User pods meet Pod Security "restricted" (issue 11 item 2, issue 15 item 1), and a pod the API server
refuses becomes a sentence with nothing left half-created.

Pods come from KubeSpawner's own get_pod_manifest() for every resource x accelerator of every values file
we ship; the refusal is simulated at the kubernetes_asyncio call (the cluster tier sends it for real).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from hubhelpers import ROOT, configured, kube_spawner
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.rest import ApiException
from podsecurity import restricted_violations
from support import demo_values
from teamhub.auth import setup as auth_setup
from teamhub.auth.setup import SECRET_ENV
from teamhub.catalog.loader import load_or_raise

KUBERNETES = "1.37"
VALUES_FILES = sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "config" / "examples").glob("*.yaml"))
ADMIN = "local:admin-for-tests"
# What the chart's Deployment gives the hub for values that keep client secrets in an existingSecret.
SECRETS_ENV = {name: "from-the-secret" for name in SECRET_ENV.values()}


def shapes(path: Path):
    """Every (resource, accelerator) a person can ask for in these values."""
    cat = load_or_raise([path]).catalog
    for key, res in cat.resources.items():
        for acc in res.accelerators or (None,):
            yield key, acc


CASES = [(p, r, a) for p in VALUES_FILES for r, a in shapes(p)]


def rendered(c, options, username=ADMIN):
    sp = kube_spawner(c, username, admin=True)

    async def go():
        await sp.teamhub_apply(options)
        pod = await sp.get_pod_manifest()
        async with ApiClient() as api:
            return api.sanitize_for_serialization(pod)

    return asyncio.run(go())


def options(resource, accelerator):
    return {"resource": resource, **({"accelerator": accelerator} if accelerator else {})}


def test_every_values_file_offers_something():
    assert len({p for p, _, _ in CASES}) == len(VALUES_FILES) >= 6
    assert any(a for _, _, a in CASES), "at least one accelerator choice is exercised"


@pytest.mark.parametrize(("path", "resource", "accelerator"), CASES,
                         ids=[f"{p.name}:{r}:{a or '-'}" for p, r, a in CASES])
def test_user_pod_is_valid_and_restricted(path, resource, accelerator, monkeypatch):
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    # The example identity provider does not exist; logins are not under test here.
    monkeypatch.setattr(auth_setup, "discover", lambda issuer, **kw: {
        f"{e}_endpoint": f"{issuer}/{e}" for e in ("authorization", "token", "userinfo")}, raising=False)
    catalog = load_or_raise([path]).catalog
    # With the GPU queue on, a GPU server waits in its team's line: the values' own admin, who is in a team.
    admin = sorted(catalog.admins)[0] if catalog.queue.enabled else ADMIN
    pod = rendered(configured(path), options(resource, accelerator), admin)
    kubernetes_validate.validate(pod, KUBERNETES, strict=True)
    assert restricted_violations(pod) == []
    # The defaults a Jupyter docker-stacks image needs: jovyan (1000), group users (100) owning the home.
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    sc = pod["spec"]["containers"][0]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (1000, 100)


def test_the_restricted_check_catches_what_admission_refuses():
    """The helper must fail the pod KubeSpawner built before this change (only allowPrivilegeEscalation)."""
    old = {"spec": {"containers": [{"name": "notebook", "securityContext": {"allowPrivilegeEscalation": False}}],
                    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "h"}}]}}
    found = "\n".join(restricted_violations(old))
    for words in ("drop ALL", "runAsNonRoot", "seccompProfile"):
        assert words in found
    root = {"spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "n", "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False,
                                                                       "capabilities": {"drop": ["ALL"]}}}],
                     "volumes": [{"name": "x", "hostPath": {"path": "/"}}]}}
    found = "\n".join(restricted_violations(root))
    assert "runAsUser is 0" in found and "hostPath" in found


def with_ids(tmp_path, chart=None, image=None, resource=None) -> Path:
    values = demo_values()
    if chart is not None:
        values.setdefault("singleuser", {})["securityContext"] = chart
    if image is not None:
        values["catalog"]["images"]["scipy"]["securityContext"] = image
    if resource is not None:
        values["catalog"]["resources"]["cpu-small"]["securityContext"] = resource
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def ids_of(pod):
    sc = pod["spec"]["containers"][0]["securityContext"]
    return sc.get("runAsUser"), sc.get("runAsGroup"), pod["spec"]["securityContext"].get("fsGroup")


def test_resource_over_image_over_chart(tmp_path):
    path = with_ids(tmp_path, chart={"runAsUser": 2000, "runAsGroup": 2000, "fsGroup": 2000},
                    image={"runAsUser": 1001, "runAsGroup": 0}, resource={"fsGroup": 0})
    c = configured(path)
    small = rendered(c, {"resource": "cpu-small"})
    assert ids_of(small) == (1001, 0, 0)  # uid/gid from the image, fsGroup from the resource
    assert restricted_violations(small) == []
    kubernetes_validate.validate(small, KUBERNETES, strict=True)
    # Another resource on another image keeps the chart's ids; the override did not leak (clean slate).
    other = rendered(c, {"resource": "research-gpu"})
    assert ids_of(other) == (2000, 2000, 2000)


def test_root_uid_is_refused_by_the_schema(tmp_path):
    from teamhub.catalog.loader import load

    checked = load([with_ids(tmp_path, resource={"runAsUser": 0})], demo=True)
    assert [(p.path, p.message) for p in checked.errors] == [
        (("catalog", "resources", "cpu-small", "securityContext", "runAsUser"), "must be at least 1, not 0")]


# --- the API server refuses the pod ------------------------------------------------------------------

PSA_MESSAGE = ('pods "teamhub-local-3aalice" is forbidden: violates PodSecurity "restricted:latest": '
               'unrestricted capabilities (container "notebook" must set securityContext.capabilities.drop=["ALL"])')


class RefusingApi:
    """kubernetes_asyncio's CoreV1Api as the real API server answers a refused pod: an ApiException."""

    def __init__(self, status, message=PSA_MESSAGE):
        self.status = status
        self.message = message
        self.calls = []

    async def create_namespaced_pod(self, namespace, body, **kwargs):
        self.calls.append(("pod", kwargs.get("dry_run")))
        exc = ApiException(status=self.status, reason="Forbidden" if self.status == 403 else "Unprocessable Entity")
        exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": self.message, "code": self.status})
        raise exc

    async def create_namespaced_persistent_volume_claim(self, namespace, body, **kwargs):
        self.calls.append(("pvc", None))


def start_refused(status, pvc_known: bool, caplog, message=PSA_MESSAGE, api=None):
    from jupyterhub.spawner import SpawnException

    sp = kube_spawner(configured(), "local:alice")
    sp.api = api or RefusingApi(status, message)
    sp._pvc_exists = pvc_known

    async def no_reflector(*args, **kwargs):  # watching pods and events needs a cluster; not under test here
        return None

    sp._start_watching_pods = sp._start_watching_events = no_reflector
    sp.failfast_interval = 60

    async def go():
        await sp._run_apply_user_options({"resource": "cpu-small"})
        await sp._start()

    with caplog.at_level(logging.DEBUG), pytest.raises(SpawnException) as info:
        asyncio.run(go())
    return sp, info.value


@pytest.mark.parametrize("status", [403, 422])
def test_first_start_refused_creates_no_home_volume(status, caplog):
    sp, stopped = start_refused(status, pvc_known=False, caplog=caplog)
    # Admission judged the pod with a dry run before the PVC; nothing was stored.
    assert sp.api.calls == [("pod", "All")]
    assert stopped.jupyterhub_message.startswith("The cluster refused to start 'Python (2 CPUs)': violates PodSecurity")
    assert "tell your admin" in stopped.jupyterhub_message
    assert 'teamhub-local-3aalice' not in stopped.jupyterhub_message
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "refused the pod" in r.getMessage()]
    assert len(warnings) == 1


def test_later_start_refused_is_a_sentence_too(caplog):
    sp, stopped = start_refused(403, pvc_known=True, caplog=caplog)
    assert sp.api.calls == [("pod", None)]  # no dry run when no PVC is created: one request as before
    assert "violates PodSecurity" in stopped.jupyterhub_message
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_refusal_within_the_first_second_reaches_the_page_as_its_sentence(caplog):
    """JupyterHub's spawn page waits one second for the start; what fails by then is re-raised to the page
    only if it is an HTTPError, anything else becomes "Unhandled error starting server" with a traceback."""
    from types import SimpleNamespace

    from jupyterhub.handlers.pages import SpawnHandler
    from tornado import web

    _, stopped = start_refused(403, pvc_known=False, caplog=caplog)

    async def spawn_single_user(*args, **kwargs):
        raise stopped

    handler = SimpleNamespace(spawn_single_user=spawn_single_user, log=logging.getLogger("test.spawn"),
                              redirect=lambda url: pytest.fail("a refused start must not redirect"))
    spawner = SimpleNamespace(_spawn_future=None, _log_name="alice")
    caplog.clear()
    with caplog.at_level(logging.DEBUG), pytest.raises(web.HTTPError) as info:
        asyncio.run(SpawnHandler._wrap_spawn_single_user(handler, None, "", "", spawner, "/pending"))
    assert info.value is stopped  # passed through: the page shows jupyterhub_message, the sentence
    assert info.value.jupyterhub_message.startswith("The cluster refused to start 'Python (2 CPUs)'")
    assert not [r for r in caplog.records if r.exc_info]



class AdmitsTheDryRun(RefusingApi):
    """Admission passes the dry run; the real create is refused, only to end the start without a cluster."""

    async def create_namespaced_pod(self, namespace, body, **kwargs):
        self.bodies = [*getattr(self, "bodies", []), body]
        if kwargs.get("dry_run"):
            self.calls.append(("pod", "All"))
            return body
        return await super().create_namespaced_pod(namespace, body, **kwargs)


def test_first_start_builds_the_pod_once_for_the_dry_run_and_the_create(caplog, monkeypatch):
    """The dry run before the home volume judges the very manifest KubeSpawner then creates: building it
    twice cost CPU on every first start."""
    from kubespawner import KubeSpawner

    built = []
    original = KubeSpawner.get_pod_manifest

    async def counted(self):
        built.append(await original(self))
        return built[-1]

    monkeypatch.setattr(KubeSpawner, "get_pod_manifest", counted)
    sp, _ = start_refused(403, pvc_known=False, caplog=caplog, api=AdmitsTheDryRun(403))
    assert sp.api.calls == [("pod", "All"), ("pvc", None), ("pod", None)]
    assert len(built) == 1 and sp.api.bodies[0] is sp.api.bodies[1] is built[0]
