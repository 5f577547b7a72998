"""Helpers for hub unit tests: a runtime from values, and spawners that need no hub and no cluster."""

from __future__ import annotations

from pathlib import Path

from support import DEMO_VALUES
from teamhub.catalog.loader import load_or_raise
from teamhub.hub import config as hub_config
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "config" / "values.yaml"


class FakeUser:
    def __init__(self, name: str, admin: bool = False, groups=()):
        self.name = name
        self.admin = admin
        self.id = abs(hash(name)) % 10000
        self.url = f"/user/{name}/"
        self._groups = list(groups)
        # what JupyterHub keeps for a person with auth state (a provider's groups); None: nothing to decrypt
        self.encrypted_auth_state = b"encrypted" if groups else None

    async def get_auth_state(self):
        return {"groups": self._groups}


def configured(values=DEMO_VALUES, mode="kubernetes", environ=None):
    """A traitlets Config exactly as the hub builds it (its runtime has a fresh quota book). `values`: a file
    or several (default: the demo's, whose accounts the tests use; checked in demo mode)."""
    c = Config()
    files = [values] if isinstance(values, (str, Path)) else list(values)
    hub_config.configure(c, load_or_raise(files, demo=True), mode, environ or {})
    return c


def runtime(c):
    """The hub's runtime, as configure() hands it to the spawners."""
    return c.TeamhubKubeSpawner.teamhub_runtime


def _no_cluster():
    """KubeSpawner loads a kube config when built; these tests never talk to a cluster."""
    import kubespawner.spawner as ks

    ks.load_config = lambda **kwargs: None
    ks.shared_client = lambda *args, **kwargs: None


def kube_spawner(c, username="local:alice", admin=False, groups=()):
    from teamhub.hub.podspawner import TeamhubKubeSpawner

    _no_cluster()
    sp = TeamhubKubeSpawner(_mock=True, config=c, user=FakeUser(username, admin, groups))
    sp.api_token = "test-token"
    return sp


def pod_manifests(namespace: str, username: str, options: dict, values=None, environ: dict | None = None) -> tuple[dict, dict]:
    """(pod, pvc) exactly as the hub builds them (KubeSpawner's own get_pod_manifest() and get_pvc_manifest()
    through teamhub's spawner), as JSON; `environ` is the hub's environment (e.g. the chart's
    TEAMHUB_USER_POD_LABELS)."""
    import asyncio

    from kubernetes_asyncio.client import ApiClient

    sp = kube_spawner(configured(values, environ=environ) if values else configured(environ=environ), username)
    sp.namespace = namespace

    async def build():
        await sp.teamhub_apply(options)
        pod, pvc = await sp.get_pod_manifest(), sp.get_pvc_manifest()
        async with ApiClient() as api:
            return api.sanitize_for_serialization(pod), api.sanitize_for_serialization(pvc)

    return asyncio.run(build())
