"""A real Kubernetes control plane on loopback for the cluster tier: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok standing in for the kubelets of fake nodes.

Every binary comes from `.tools/bin/` (scripts/setup.sh builds them at pinned versions). Anything that
cannot start raises ControlPlaneError with the component's log, so the tier fails loudly, never skips.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from support import TOOLS

from .pki import Pki

KWOK_STAGES = TOOLS.parent / "kwok-stages"
# The kwok stage configs (copied from the kwok module by setup.sh): nodes become Ready and keep a lease,
# pods become Running and Ready, Job pods then Succeed, and deleted pods go away.
STAGES = ("node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete")
# The tier's own stages, for what kwok's do not model: a container image the registry does not have.
TIER_STAGES = (Path(__file__).with_name("kwok-stages") / "pod-image-missing.yaml",)
# Only nodes with this annotation are kwok's: the tier's nodes carry it.
FAKE_NODE = "kwok.x-k8s.io/node=fake"
# Pods get loopback addresses, so a process on this machine can listen on a pod's IP.
POD_CIDR = "127.1.0.0/16"
NODE_IP = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
# Metadata level: who did what to which object, with PodSecurity's annotations; never bodies or secrets.
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata"}]}


class ControlPlaneError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Component:
    """One binary of the control plane, logging to <dir>/<name>.log, in its own process group."""

    def __init__(self, name: str, args: list, directory: Path):
        self.name = name
        self.log = directory / f"{name}.log"
        binary = TOOLS / args[0]
        if not binary.exists():
            raise ControlPlaneError(f"{binary} is missing: run `make setup` (scripts/setup.sh builds it)")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(binary), *map(str, args[1:])], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ControlPlaneError(f"{self.name} exited with status {self.proc.returncode}; its log ({self.log}):\n"
                                    f"{tail(self.log)}")

    def stop(self, grace: float = 10) -> None:
        """A process that exits on its own meanwhile counts as stopped (ProcessLookupError)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(grace)


def kubeconfig(path: Path, server: str, ca: Path, user: dict) -> Path:
    """A kubeconfig with one cluster, one user (client cert or token) and one current context."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "teamhub-test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "teamhub-test", "context": {"cluster": "teamhub-test", "user": "user"}}],
        "current-context": "teamhub-test",
    }))
    path.chmod(0o600)  # helm warns about a group-readable kubeconfig
    return path


def cluster_exec(workdir: Path, env: dict) -> dict:
    """kwok's ClusterExec for every pod: `kubectl exec` runs the command on this machine, in `workdir`, with
    this process's environment plus `env` (no container exists under kwok)."""
    return {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "ClusterExec", "metadata": {"name": "local"},
            "spec": {"execs": [{"local": {"workDir": str(workdir),
                                          "envs": [{"name": k, "value": v} for k, v in env.items()]}}]}}


class ControlPlane:
    """Start with start(); stop() ends every process it started. `admin_kubeconfig` is system:masters.
    `exec_env`: the environment `kubectl exec` gives commands (see cluster_exec)."""

    def __init__(self, directory: Path, exec_env: dict | None = None, api_address: str = "127.0.0.1", api_port: int = 0,
                 kwok: bool = True):
        # The containers tier (tests/containers/) puts the API server on the `kubernetes` Service's address
        # in its own network namespace, where pods reach it without kube-proxy, and runs a real kubelet, not kwok.
        self.api_address, self.api_port, self.kwok = api_address, api_port, kwok
        self.exec_env = exec_env or {}
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.components: list[Component] = []
        self.audit_log = self.dir / "audit.log"
        self.server = ""
        self.admin_kubeconfig = self.dir / "admin.kubeconfig"

    # --- start -------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, deadline: float) -> None:
        self.pki = Pki(self.dir / "pki")
        etcd_port, etcd_peer, api_port = free_port(), free_port(), self.api_port or free_port()
        self.server = f"https://{self.api_address}:{api_port}"
        etcd = self._run("etcd", [
            "etcd", "--name=test", f"--data-dir={self.dir / 'etcd'}", "--unsafe-no-fsync",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}", f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=test=http://127.0.0.1:{etcd_peer}", "--log-level=warn"])
        self._wait(deadline, etcd, lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"))

        policy = self.dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        # The aggregation layer (Kueue's visibility API is an APIService): the API server proxies with this client
        # certificate and the caller's identity in headers, which the extension server trusts from this CA.
        front_proxy = self.pki.client("front-proxy", "front-proxy-client")
        apiserver = self._run("kube-apiserver", [
            "kube-apiserver", f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={self.api_address}", f"--advertise-address={self.api_address}", f"--secure-port={api_port}",
            # Loopback is not an address the default reconciler may publish for the kubernetes Service.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={self.pki.serving.cert}", f"--tls-private-key-file={self.pki.serving.key}",
            f"--client-ca-file={self.pki.ca.cert}", f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--service-account-key-file={self.pki.sa_pub}", f"--service-account-signing-key-file={self.pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # kubectl exec/logs: the API server calls kwok's kubelet endpoint on the node's InternalIP.
            f"--kubelet-certificate-authority={self.pki.ca.cert}", "--kubelet-preferred-address-types=InternalIP",
            # As kubeadm and managed clusters do: privileged pods are possible, only admission keeps them out.
            "--allow-privileged=true",
            # PodSecurity is on by default; named so that the tier states what it relies on.
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
            "--audit-log-maxbackup=1", "--audit-log-maxsize=200",
            f"--requestheader-client-ca-file={self.pki.ca.cert}", "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={front_proxy.cert}", f"--proxy-client-key-file={front_proxy.key}",
            "--profiling=false", "--v=1"])
        admin = self.pki.client("admin", "teamhub-test-admin", "system:masters")
        kubeconfig(self.admin_kubeconfig, self.server, self.pki.ca.cert,
                   {"client-certificate": str(admin.cert), "client-key": str(admin.key)})
        self.api = Api(self.server, self.pki.ca.cert, admin)
        self._wait(deadline, apiserver, lambda: self.api.ok("/readyz"))

        cm_conf = self._client_kubeconfig("controller-manager", "system:kube-controller-manager")
        self._run("kube-controller-manager", [
            "kube-controller-manager", f"--kubeconfig={cm_conf}", "--leader-elect=false",
            f"--authentication-kubeconfig={cm_conf}", f"--authorization-kubeconfig={cm_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", f"--cert-dir={self.dir / 'cm-certs'}",
            "--use-service-account-credentials=true", f"--root-ca-file={self.pki.ca.cert}",
            f"--service-account-private-key-file={self.pki.sa_key}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false", "--v=1"])
        sched_conf = self._client_kubeconfig("scheduler", "system:kube-scheduler")
        self._run("kube-scheduler", [
            "kube-scheduler", f"--kubeconfig={sched_conf}", "--leader-elect=false",
            f"--authentication-kubeconfig={sched_conf}", f"--authorization-kubeconfig={sched_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", f"--cert-dir={self.dir / 'scheduler-certs'}",
            "--profiling=false", "--v=1"])
        if self.kwok:
            self._start_kwok()
        # The controller manager is working once it has given the default namespace its ServiceAccount.
        self._wait(deadline, None, lambda: self.api.ok("/api/v1/namespaces/default/serviceaccounts/default"))

    def _start_kwok(self) -> None:
        kwok_conf = self._client_kubeconfig("kwok", "kwok", "system:masters")
        stages = [KWOK_STAGES / f"{s}.yaml" for s in STAGES]
        missing = [str(s) for s in stages if not s.exists()]
        if missing:
            raise ControlPlaneError(f"kwok stage configs are missing ({', '.join(missing)}): run `make setup`")
        stages += TIER_STAGES
        kubelet, kubelet_port = self.pki.server("kwok-kubelet", (f"IP:{NODE_IP}",)), free_port()
        execs = self.dir / "cluster-exec.yaml"
        (self.dir / "exec").mkdir(exist_ok=True)
        execs.write_text(yaml.safe_dump(cluster_exec(self.dir / "exec", self.exec_env)))
        self._run("kwok", [
            "kwok", f"--kubeconfig={kwok_conf}", *(f"--config={s}" for s in [*stages, execs]),
            f"--server-address={NODE_IP}:{kubelet_port}", f"--node-port={kubelet_port}",
            f"--tls-cert-file={kubelet.cert}", f"--tls-private-key-file={kubelet.key}",
            "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={FAKE_NODE}",
            f"--cidr={POD_CIDR}", f"--node-ip={NODE_IP}", "--node-lease-duration-seconds=40"])

    def _run(self, name: str, args: list) -> Component:
        component = Component(name, args, self.dir)
        self.components.append(component)
        return component

    def _client_kubeconfig(self, name: str, user: str, group: str | None = None) -> Path:
        pair = self.pki.client(name, user, group)
        return kubeconfig(self.dir / f"{name}.kubeconfig", self.server, self.pki.ca.cert,
                          {"client-certificate": str(pair.cert), "client-key": str(pair.key)})

    def _wait(self, deadline: float, component: Component | None, ready, what: str = "the control plane") -> None:
        """Until ready() is true; a component that exits, or the deadline, fails with the logs."""
        while True:
            self.check_alive()
            if ready():
                return
            if time.monotonic() > deadline:
                who = [component] if component else self.components
                logs = "\n".join(f"--- {c.name} ({c.log}):\n{tail(c.log)}" for c in who)
                raise ControlPlaneError(f"{what} did not become ready in time:\n{logs}")
            time.sleep(0.1)

    def wait_until(self, ready, timeout: float, what: str) -> None:
        """For later set-up steps (nodes Ready, ...): fail with every component's log on timeout."""
        self._wait(time.monotonic() + timeout, None, ready, what)

    def check_alive(self) -> None:
        for c in self.components:
            c.check_alive()

    # --- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop in reverse order of start (kwok first, etcd last); every process is waited for."""
        for c in reversed(self.components):
            c.stop()

    def leftover(self) -> list[str]:
        return [c.name for c in self.components if c.proc.poll() is None]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


class ApiError(RuntimeError):
    def __init__(self, status: int, body: dict | str):
        self.status, self.body = status, body
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")


class Api:
    """Plain JSON requests to the API server as one identity (client certificate or bearer token)."""

    def __init__(self, server: str, ca: Path, cert=None, token: str | None = None):
        self.server = server
        self.context = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            self.context.load_cert_chain(str(cert.cert), str(cert.key))
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            try:
                raise ApiError(exc.code, json.loads(raw)) from None
            except json.JSONDecodeError:
                raise ApiError(exc.code, raw) from None
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:  # /readyz and friends answer plain text
            return {"text": raw.decode(errors="replace")}

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def delete(self, path: str) -> dict:
        return self.request("DELETE", path)

    def ok(self, path: str) -> bool:
        try:
            self.request("GET", path, timeout=2)
            return True
        except (ApiError, OSError):
            return False

    def watch(self, path: str, resource_version: str, timeout_seconds: int):
        """The events of one watch request (ends after timeout_seconds): dicts with type and object."""
        sep = "&" if "?" in path else "?"
        url = f"{self.server}{path}{sep}watch=1&resourceVersion={resource_version}&timeoutSeconds={timeout_seconds}"
        req = urllib.request.Request(url, headers=self.headers)
        with urllib.request.urlopen(req, context=self.context, timeout=timeout_seconds + 10) as r:
            for line in r:
                if line.strip():
                    yield json.loads(line)
