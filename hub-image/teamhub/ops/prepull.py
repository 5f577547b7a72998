"""`teamhub prepull-await`: the chart's hook puller waits here, boundedly, before an install or upgrade.

The chart starts one puller DaemonSet per group of images with the same node targeting; each puller pod
pulls its images in init containers and then idles. This command waits until every DaemonSet's pods are
ready, counting pods that cannot run (unschedulable: full, cordoned or otherwise unable to take the pod;
an image that can never be pulled) as settled, and gives up after --timeout. It always exits 0 once it
has run: a slow or broken node delays the upgrade at most --timeout and never fails it.

It talks to the API server over plain HTTPS with the pod's service account token: no client library.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# Waiting reasons of an init container that no wait will fix.
HOPELESS = {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError"}


class ApiError(Exception):
    pass


class InClusterApi:
    """GET against the API server with the pod's service account."""

    def __init__(self, base_url: str, token: str, ca_file: str | None, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self.timeout = timeout

    @classmethod
    def from_environment(cls, sa_dir: Path = SA_DIR) -> InClusterApi:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ApiError("not running in a cluster: KUBERNETES_SERVICE_HOST is not set")
        try:
            token = (sa_dir / "token").read_text().strip()
        except OSError as exc:
            raise ApiError(f"no service account token: {exc}") from exc
        if ":" in host:  # IPv6
            host = f"[{host}]"
        ca = sa_dir / "ca.crt"
        return cls(f"https://{host}:{port}", token, str(ca) if ca.exists() else None)

    def get(self, path: str) -> dict:
        req = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ApiError(f"GET {path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(f"GET {path}: {exc}") from exc


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


def check(api, namespace: str, name: str) -> Progress:
    ns = urllib.parse.quote(namespace)
    try:
        ds = api.get(f"/apis/apps/v1/namespaces/{ns}/daemonsets/{urllib.parse.quote(name)}")
        labels = ds.get("spec", {}).get("selector", {}).get("matchLabels", {})
        selector = urllib.parse.quote(",".join(f"{k}={v}" for k, v in sorted(labels.items())))
        pods = api.get(f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}").get("items", [])
    except ApiError as exc:
        return Progress(name, error=str(exc))
    return assess(ds, pods)


def await_daemonsets(api, namespace: str, names: list, timeout: float, interval: float = 5,
                     clock=time.monotonic, sleep=time.sleep, out=sys.stdout) -> bool:
    """Wait until every DaemonSet is settled or the timeout passes. True when all settled."""
    deadline = clock() + timeout
    while True:
        progress = [check(api, namespace, n) for n in names]
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
        sleep(min(interval, max(0.0, deadline - clock())))


def cmd_prepull_await(args) -> int:
    try:
        api = InClusterApi.from_environment()
    except ApiError as exc:
        print(f"prepull: {exc}; not waiting", file=sys.stderr)
        return 0
    await_daemonsets(api, args.namespace, args.daemonset, args.timeout)
    return 0


def register(sub) -> None:
    p = sub.add_parser("prepull-await", help="(in the cluster) wait, boundedly, for the chart's hook image pullers")
    p.add_argument("--namespace", required=True, help="the release's namespace")
    p.add_argument("--daemonset", action="append", required=True, help="a puller DaemonSet's name (repeatable)")
    p.add_argument("--timeout", type=float, default=240, help="seconds to wait at most (default 240); then exit 0")
    p.set_defaults(func=cmd_prepull_await)
