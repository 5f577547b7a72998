"""`teamhub prepull-await`: the chart's hook puller waits here, boundedly, before an install or upgrade.

The chart starts one puller DaemonSet per group of images with the same node targeting; each puller pod
pulls its images in init containers and then idles. This command waits until every DaemonSet's pods are
ready, counting pods that cannot run (unschedulable: full, cordoned or otherwise unable to take the pod;
an image that can never be pulled) as settled, and gives up after --timeout. It always exits 0 once it
has run: a slow or broken node delays the upgrade at most --timeout and never fails it.

It reads the API with kubernetes_asyncio (the hub's own client library) and the pod's service account.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# Waiting reasons of an init container that no wait will fix.
HOPELESS = {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError"}


class ApiError(Exception):
    pass


class KubeApi:
    """The two reads the awaiter needs, as plain JSON dicts (the API's own field names), through
    kubernetes_asyncio with the pod's service account."""

    def __init__(self, api_client, timeout: float = 10):
        from kubernetes_asyncio import client

        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.timeout = timeout

    @classmethod
    def from_environment(cls, sa_dir: Path = SA_DIR, environ=os.environ) -> KubeApi:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.config import ConfigException
        from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

        configuration = client.Configuration()
        try:
            InClusterConfigLoader(str(sa_dir / "token"), str(sa_dir / "ca.crt"), environ=environ).load_and_set(configuration)
        except ConfigException as exc:
            raise ApiError(f"not running in a cluster with a service account: {exc}") from exc
        return cls(client.ApiClient(configuration))

    async def _json(self, call, *args, **kwargs) -> dict:
        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            # The raw JSON (the API's field names, as assess() reads them), not typed models: no client-side
            # validation of fields the awaiter never reads. Without preloading the library leaves the status to us.
            response = await call(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            if response.status >= 400:
                response.release()
                raise ApiException(status=response.status, reason=response.reason)
            return await response.json()
        except ApiException as exc:
            raise ApiError(f"{call.__name__}: HTTP {exc.status}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise ApiError(f"{call.__name__}: {exc or type(exc).__name__}") from exc

    async def daemonset(self, namespace: str, name: str) -> dict:
        return await self._json(self.apps.read_namespaced_daemon_set, name, namespace)

    async def pods(self, namespace: str, selector: str) -> list:
        return (await self._json(self.core.list_namespaced_pod, namespace, label_selector=selector)).get("items", [])

    async def close(self) -> None:
        await self.api_client.close()


@dataclass
class Progress:
    name: str
    desired: int = 0
    ready: int = 0
    stuck: list = field(default_factory=list)  # "node: reason" for pods that cannot finish
    current: bool = False  # the controller has seen the latest spec
    error: str = ""

    @property
    def settled(self) -> bool:
        return self.current and not self.error and self.ready + len(self.stuck) >= self.desired

    def __str__(self) -> str:
        text = f"{self.name}: {self.ready}/{self.desired} nodes have the images"
        if self.stuck:
            text += f"; cannot finish on {len(self.stuck)}: " + ", ".join(self.stuck)
        if self.error:
            text += f"; {self.error}"
        return text


def _pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions", []))


def _stuck_reason(pod: dict) -> str | None:
    status = pod.get("status", {})
    for cond in status.get("conditions", []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            return "unschedulable"
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        reason = (cs.get("state", {}).get("waiting") or {}).get("reason")
        if reason in HOPELESS:
            return reason
    return None


def assess(daemonset: dict, pods: list) -> Progress:
    """How far one puller DaemonSet is, from its object and its pods."""
    meta, status = daemonset.get("metadata", {}), daemonset.get("status", {})
    p = Progress(meta.get("name", "?"))
    p.desired = int(status.get("desiredNumberScheduled", 0))
    p.current = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
    for pod in pods:
        if _pod_ready(pod):
            p.ready += 1
        else:
            reason = _stuck_reason(pod)
            if reason:
                p.stuck.append(f"{pod.get('spec', {}).get('nodeName') or pod.get('metadata', {}).get('name', '?')}: {reason}")
    p.ready = max(p.ready, int(status.get("numberReady", 0)))
    return p


async def check(api, namespace: str, name: str) -> Progress:
    try:
        ds = await api.daemonset(namespace, name)
        labels = ds.get("spec", {}).get("selector", {}).get("matchLabels", {})
        pods = await api.pods(namespace, ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    except ApiError as exc:
        return Progress(name, error=str(exc))
    return assess(ds, pods)


async def await_daemonsets(api, namespace: str, names: list, timeout: float, interval: float = 5,
                           clock=time.monotonic, sleep=asyncio.sleep, out=sys.stdout) -> bool:
    """Wait until every DaemonSet is settled or the timeout passes. True when all settled."""
    deadline = clock() + timeout
    while True:
        progress = [await check(api, namespace, n) for n in names]
        if all(p.settled for p in progress):
            for p in progress:
                print(f"done: {p}", file=out)
            return True
        if clock() >= deadline:
            for p in progress:
                print(f"{'done' if p.settled else 'gave up'}: {p}", file=out)
            print(f"prepull: stopped waiting after {timeout:g}s; the upgrade continues and the continuous "
                  "puller keeps pulling", file=out)
            return False
        await sleep(min(interval, max(0.0, deadline - clock())))


async def _await(args) -> None:
    api = KubeApi.from_environment()
    try:
        await await_daemonsets(api, args.namespace, args.daemonset, args.timeout)
    finally:
        await api.close()


def cmd_prepull_await(args) -> int:
    try:
        asyncio.run(_await(args))
    except ApiError as exc:
        print(f"prepull: {exc}; not waiting", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("prepull-await", help="(in the cluster) wait, boundedly, for the chart's hook image pullers")
    p.add_argument("--namespace", required=True, help="the release's namespace")
    p.add_argument("--daemonset", action="append", required=True, help="a puller DaemonSet's name (repeatable)")
    p.add_argument("--timeout", type=float, default=240, help="seconds to wait at most (default 240); then exit 0")
    p.set_defaults(func=cmd_prepull_await)
