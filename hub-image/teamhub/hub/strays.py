"""User pods that no server of this hub names: deleted once, when the hub has started (kubernetes mode).

Such a pod runs outside quota, budget and deadline (bounded only by its activeDeadlineSeconds): its server row is
gone from the database (restored from an older backup, or edited by hand) while the pod kept running. The pods
are listed BEFORE the running servers' names are read: a start creates its pod only after its server row and
state are committed (TeamhubMixin.teamhub_persist_state), so a pod in the list belongs to a server that is
already named, and a starting server is never taken for a stray.
"""

from __future__ import annotations

import logging

log = logging.getLogger("JupyterHub")


def selector(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def running_pod_names(app) -> set[str]:
    """The pod names of the servers the hub tracks: running, starting or being checked after a restart."""
    return {spawner.pod_name for user in app.users.values() for spawner in user.spawners.values()
            if spawner.server is not None or spawner.pending}


async def delete_strays(api, namespace: str, labels: dict, names) -> list[str]:
    """Delete the pods carrying `labels` that `names()` (called after the listing) does not name; their names."""
    from kubernetes_asyncio.client.rest import ApiException

    listed = await api.list_namespaced_pod(namespace, label_selector=selector(labels))
    known = names()
    strays = sorted(p.metadata.name for p in listed.items if p.metadata.name not in known and not p.metadata.deletion_timestamp)
    for name in strays:
        log.warning("Pod %s/%s belongs to no server of this hub (its server is not in the database): deleting it",
                    namespace, name)
        try:
            await api.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return strays


def install(namespace: str, labels: dict) -> None:
    """Run delete_strays once, when JupyterHub has finished starting (its spawners are checked by then)."""
    import asyncio

    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # configured outside a running hub (tests, tools)
    app = JupyterHub.instance()

    async def run():
        from kubespawner.clients import load_config, shared_client

        try:
            load_config(host=None, ssl_ca_cert=None, verify_ssl=None)  # as KubeSpawner does (cached)
            await delete_strays(shared_client("CoreV1Api"), namespace, labels, lambda: running_pod_names(app))
        except Exception:  # never fatal: the next hub start tries again
            log.exception("teamhub: looking for stray user pods failed")

    started = getattr(app, "_start_future", None)
    if started is not None:
        started.add_done_callback(lambda _: asyncio.ensure_future(run()))
