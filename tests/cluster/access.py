"""What tests use of the running cluster: kubeconfigs (the admin's, or a ServiceAccount's token so that
exactly that account's RBAC is exercised), kubectl and helm against it, test namespaces enforcing Pod
Security "restricted", and the audit log. Later tiers (a hub under test, the operator scripts against
real releases) take the session's `cluster` fixture and use these."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from support import TOOLS, tree_env

from . import course
from .controlplane import NODE_IP, Api, ApiError, ControlPlane, kubeconfig
from .inpod import HubLoopback

RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
RESTRICTED["pod-security.kubernetes.io/enforce-version"] = "latest"
HELMS = {"helm3": "helm", "helm4": "helm4"}
# Free PVs kept in the pool before each test namespace is handed out.
FREE_VOLUMES = 6


class Cluster:
    def __init__(self, plane: ControlPlane, hub_loopback: HubLoopback):
        self.plane = plane
        # What `kubectl exec` in a hub pod finds on 127.0.0.1:8081 (inpod.py); tests set its namespace.
        self.hub_loopback = hub_loopback
        hub_loopback.api = plane.api
        self.dir = plane.dir
        self.server = plane.server
        self.ca = plane.pki.ca.cert
        self.kubeconfig: Path = plane.admin_kubeconfig
        self.api: Api = plane.api
        self.audit_log: Path = plane.audit_log

    # --- start: the course cluster on a fresh control plane ----------------------------------------
    @classmethod
    def start(cls, directory: Path) -> Cluster:
        hub_loopback = HubLoopback()
        plane = ControlPlane(directory, exec_env=hub_loopback.exec_env())
        try:
            plane.start()
            cluster = cls(plane, hub_loopback)
            for node in course.nodes():
                cluster.api.create("/api/v1/nodes", node)
            cluster.api.create("/apis/storage.k8s.io/v1/storageclasses", course.storage_class())
            cluster.top_up_volumes()
            names = {n["metadata"]["name"] for n in course.nodes()}
            plane.wait_until(lambda: cluster.ready_nodes() >= names, 60, "the kwok nodes")
            for name in sorted(names):
                cluster.give_address(name)
        except BaseException:
            plane.stop()
            hub_loopback.stop()
            raise
        return cluster

    def stop(self) -> list[str]:
        """Stop every process; returns the names of any still running (none, or it is a bug)."""
        self.plane.stop()
        self.hub_loopback.stop()
        return self.plane.leftover()

    def ready_nodes(self) -> set[str]:
        return {n["metadata"]["name"] for n in self.api.get("/api/v1/nodes")["items"]
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))}

    def give_address(self, node: str) -> None:
        """The kwok nodes come up Ready without status.addresses (seen with kwok v0.8.0 here); the API server
        needs the InternalIP to reach kwok's kubelet endpoint for `kubectl exec`. kwok's heartbeats keep them."""
        addresses = [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": node}]
        self.kubectl("patch", "node", node, "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": {"addresses": addresses}}))

    def top_up_volumes(self, free: int = FREE_VOLUMES) -> None:
        """Leave `free` pool volumes for the claims to come. Claims still waiting anywhere in the cluster take
        free volumes first (the binder works through them in its own order), so they are counted too."""
        pvs = self.api.get("/api/v1/persistentvolumes?labelSelector=teamhub-test/pool")["items"]
        available = sum(1 for pv in pvs if pv.get("status", {}).get("phase") in (None, "Pending", "Available"))
        waiting = sum(1 for c in self.api.get("/api/v1/persistentvolumeclaims")["items"]
                      if c.get("status", {}).get("phase") in (None, "Pending"))
        for number in range(len(pvs) + 1, len(pvs) + 1 + free + waiting - available):
            name = f"pool-{number:03d}"
            self.api.create("/api/v1/persistentvolumes", course.volume(name, self.dir / "volumes" / name))

    # --- namespaces ---------------------------------------------------------------------------------
    def new_namespace(self, hint: str) -> str:
        """A fresh namespace enforcing Pod Security "restricted", ready for pods (its default
        ServiceAccount exists), with free volumes in the pool."""
        base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-") or "t"
        name = f"{base}-{int(time.time() * 1000) % 100000:05d}"
        self.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name, "labels": RESTRICTED}})
        self.top_up_volumes()
        self.plane.wait_until(lambda: self.api.ok(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30,
                              f"the default ServiceAccount of namespace {name}")
        return name

    def delete_namespace(self, name: str) -> None:
        try:
            self.api.delete(f"/api/v1/namespaces/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    # --- tools against the cluster ----------------------------------------------------------------
    def env(self, kubeconfig_path: Path | None = None, **extra) -> dict:
        """Environment for kubectl, helm and the operator scripts: this cluster, this tree's tools."""
        return tree_env(KUBECONFIG=str(kubeconfig_path or self.kubeconfig), **extra)

    def kubectl(self, *args, kubeconfig_path: Path | None = None, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        return self._run([str(TOOLS / "kubectl"), *map(str, args)], kubeconfig_path, input, check, timeout)

    def kubectl_json(self, *args, **kwargs):
        return json.loads(self.kubectl(*args, "-o", "json", **kwargs).stdout)

    def helm(self, which: str, *args, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        return self._run([str(TOOLS / HELMS[which]), *map(str, args)], None, None, check, timeout)

    def _run(self, argv: list, kubeconfig_path, input, check, timeout) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, env=self.env(kubeconfig_path),
                              timeout=timeout)
        if check and proc.returncode != 0:
            self.plane.check_alive()  # a crashed component explains more than the client's error
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    # --- identities ---------------------------------------------------------------------------------
    def service_account_token(self, namespace: str, name: str, duration: str = "1h") -> str:
        return self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig that acts as ServiceAccount <namespace>/<name> (a fresh bound token)."""
        path = self.dir / f"sa-{namespace}-{name}.kubeconfig"
        kubeconfig(path, self.server, self.ca, {"token": self.service_account_token(namespace, name)})
        return path

    def service_account_api(self, namespace: str, name: str) -> Api:
        return Api(self.server, self.ca, token=self.service_account_token(namespace, name))

    # --- the audit log --------------------------------------------------------------------------------
    def audit_events(self, namespace: str | None = None, resource: str | None = None, verb: str | None = None) -> list[dict]:
        """Completed requests (ResponseComplete), oldest first, filtered by the object's namespace,
        resource (e.g. "pods") and verb (e.g. "create")."""
        events = []
        for line in self.audit_log.read_text().splitlines():
            e = json.loads(line)
            ref = e.get("objectRef") or {}
            if e.get("stage") != "ResponseComplete":
                continue
            if namespace and ref.get("namespace") != namespace or resource and ref.get("resource") != resource:
                continue
            if verb and e.get("verb") != verb:
                continue
            events.append(e)
        return events
