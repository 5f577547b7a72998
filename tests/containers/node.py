"""A real Kubernetes node for the containers tier: the cluster tier's control plane, containerd (with runc)
and a kubelet v1.37.2 built by `make setup`, all in the tier's own network namespace (netns.py).

- The API server listens on the `kubernetes` Service's address (10.96.0.1:443): pods get it from the
  Service's environment variables and reach it without kube-proxy.
- Pods get addresses on a bridge (CNI bridge + host-local, data in the tier's folder); the node's address and
  the DNS stand-in (dns.py) sit on the namespace's `lo`.
- containerd runs with its own root, state and socket in the tier's folder; the images are imported from
  archives. The tier's API server has no kubelet client certificate: the kubelet allows anonymous requests,
  which only this namespace can make.

`stop()` ends everything and restores the machine (machine.py), whatever state start() reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml
from cluster.controlplane import ControlPlane, ControlPlaneError, free_port, kubeconfig, tail
from support import TOOLS

from .images import Images, archive
from .machine import MachineState
from .netns import NetNs

SERVICE_IP = "10.96.0.1"  # the first address of the cluster tier's service range: the `kubernetes` Service
NODE_IP = "10.200.0.1"
POD_CIDR = "10.244.0.0/24"
NODE_NAME = "teamhub-node"
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins


class Node:
    def __init__(self, work: Path, images: Images):
        self.dir = work
        self.images = images
        self.machine = MachineState.record(work)
        self.netns = NetNs((NODE_IP, SERVICE_IP), tag=str(work))
        self.plane: ControlPlane | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.sock = self.dir / "containerd" / "containerd.sock"
        self.machine.shim_marker = str(self.dir)  # in every command line of its processes, shims included

    # --- start ---------------------------------------------------------------------------------------
    def start(self, timeout: float = 300) -> Node:
        missing = [t for t in ("containerd", "ctr", "runc", "unshare", "nsenter", "ip") if not shutil.which(t)]
        missing += [str(TOOLS / "kubelet")] if not (TOOLS / "kubelet").exists() else []
        missing += [f"{CNI_BIN}/bridge"] if not Path(CNI_BIN, "bridge").exists() else []
        if missing:
            raise ControlPlaneError(f"the containers tier needs {', '.join(missing)}: run `make setup`")
        deadline = time.monotonic() + timeout
        self.netns.start()
        self.machine.pids.append(self.netns.holder.pid)
        self.netns.enter()
        self.plane = ControlPlane(self.dir / "plane", api_address=SERVICE_IP, api_port=443, kwok=False)
        try:
            self.plane.start(timeout=120)
        finally:
            self.machine.pids += [c.proc.pid for c in self.plane.components]
        self.api = self.plane.api
        pki = self.plane.pki
        dns_client = pki.client("dns", "teamhub-test-dns", "system:masters")
        self._run("dns", [sys.executable, str(Path(__file__).with_name("dns.py")), NODE_IP, self.plane.server,
                          pki.ca.cert, dns_client.cert, dns_client.key, SERVICE_IP])
        self._containerd()
        self._wait(deadline, lambda: self.sock.exists() and self.ctr("version", check=False).returncode == 0, "containerd")
        for ref in self.images.all():
            self.ctr("images", "import", "--no-unpack", archive(ref, self.dir), timeout=600)
        self._kubelet()
        self._wait(deadline, lambda: self._ready(), "the node to be Ready")
        return self

    def _run(self, name: str, argv: list) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - the process outlives this call
        proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        self.machine.pids.append(proc.pid)
        return proc

    def _wait(self, deadline: float, ready, what: str) -> None:
        while not ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n"
                                            f"{tail(self.dir / f'{name}.log')}")
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}:\n{tail(self.dir / f'{n}.log', 30)}" for n in self.procs)
                raise ControlPlaneError(f"timed out waiting for {what}:\n{logs}")
            time.sleep(0.2)

    def ctr(self, *args, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run(["ctr", "--address", str(self.sock), "--namespace", "k8s.io", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(map(str, args))} failed: {r.stderr}")
        return r

    def _containerd(self) -> None:
        write_containerd_config(self.dir / "containerd", self.sock, self.images.pause)
        self._run("containerd", ["containerd", "--config", self.dir / "containerd" / "config.toml", "--log-level", "warn"])

    def _kubelet(self) -> None:
        d = self.dir / "kubelet"
        d.mkdir(exist_ok=True)
        pki = self.plane.pki
        client = pki.client("kubelet-client", f"system:node:{NODE_NAME}", "system:nodes")
        serving = pki.server("kubelet-serving", (f"IP:{NODE_IP}", f"DNS:{NODE_NAME}"))
        conf = kubeconfig(d / "kubeconfig", self.plane.server, pki.ca.cert,
                          {"client-certificate": str(client.cert), "client-key": str(client.key)})
        write_kubelet_config(d, self.sock, NODE_IP, {
            "tlsCertFile": str(serving.cert), "tlsPrivateKeyFile": str(serving.key)})
        self._run("kubelet", [TOOLS / "kubelet", f"--config={d / 'config.yaml'}", f"--kubeconfig={conf}",
                              f"--root-dir={d / 'root'}", f"--cert-dir={d / 'certs'}", f"--node-ip={NODE_IP}",
                              f"--hostname-override={NODE_NAME}", "--v=1"])

    def _ready(self) -> bool:
        try:
            node = self.api.get(f"/api/v1/nodes/{NODE_NAME}")
        except Exception:  # noqa: BLE001 - not registered yet
            return False
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))

    # --- what tests read on the node ----------------------------------------------------------------
    def container_pid(self, pod: dict, container: str) -> int:
        """The host PID of a running container's first process (its PID 1), from containerd."""
        status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
        cid = status["containerID"].split("://", 1)[1]
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == cid:
                return int(parts[1])
        raise AssertionError(f"containerd runs no task for {container} ({cid})")

    def pod_log(self, pod: dict, container: str) -> str:
        meta = pod["metadata"]
        folder = self.dir / "kubelet" / "pod-logs" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container
        return "\n".join(f.read_text(errors="replace") for f in sorted(folder.glob("*.log"))) if folder.is_dir() else ""

    # --- stop ------------------------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """End every process (kubelet first, then the containers, containerd, DNS, the control plane), leave
        the namespace and restore the machine. Returns what could not be restored (empty, or it is a bug)."""
        failures = []
        for name in ("kubelet",):
            proc = self.procs.get(name)
            if proc is not None:
                failures += _stop(proc)
        if self.plane is not None:
            try:
                self.plane.stop()
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
            except Exception as exc:  # noqa: BLE001 - go on restoring; report it
                failures.append(f"stopping the control plane: {exc!r}")
        try:
            self.netns.leave()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"leaving the network namespace: {exc!r}")
        failures += self.machine.restore()
        return failures


def write_containerd_config(d: Path, sock: Path, pause: str) -> None:
    """containerd with its root, state, socket and CNI config in `d`; runc with cgroupfs; pods on a bridge."""
    (d / "cni").mkdir(parents=True, exist_ok=True)
    (d / "cni" / "10-teamhub.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "teamhub", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(d / "ipam"), "ranges": [[{"subnet": POD_CIDR}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}))
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    (d / "config.toml").write_text(f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
[{cri}]
  sandbox_image = "{pause}"
  # Without it every sandbox fails here ("can't get final child's PID from pipe: EOF"): root lacks CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{d / 'cni'}"
""")


def write_kubelet_config(d: Path, sock: Path, node_ip: str, extra: dict) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "failCgroupV1": False, "cgroupDriver": "cgroupfs",  # this machine: cgroup v1 hybrid, no systemd
        "address": node_ip, "port": free_port(), "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
        # Anonymous + AlwaysAllow: only this network namespace can reach it (no kubelet client cert here).
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [node_ip], "clusterDomain": "cluster.local", "resolvConf": "",
        "containerRuntimeEndpoint": f"unix://{sock}", "podLogsDir": str(d / "pod-logs"),
        "failSwapOn": False, "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 30, "nodeStatusUpdateFrequency": "2s", **extra,
    }))
    return path


def standalone_kubelet(work: Path, node_ip: str) -> tuple[list[int], str]:
    """For test_machine.py: containerd and a kubelet without an API server, running one static pod (pause),
    so that the kubelet, containerd, runc and CNI all change the machine as they do in the tier. Returns the
    processes' PIDs and the text that marks this containerd's shims."""
    from .images import _pause

    pause = _pause()
    d, sock = work / "containerd", work / "containerd" / "containerd.sock"
    write_containerd_config(d, sock, pause)
    procs = []
    for name, argv in (("containerd", ["containerd", "--config", d / "config.toml", "--log-level", "warn"]),):
        procs.append(subprocess.Popen([str(a) for a in argv], stdout=open(work / f"{name}.log", "wb"),  # noqa: SIM115
                                      stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 60
    while not sock.exists():
        if time.monotonic() > deadline or procs[0].poll() is not None:
            raise ControlPlaneError(f"containerd did not start:\n{tail(work / 'containerd.log')}")
        time.sleep(0.1)
    subprocess.run(["ctr", "--address", str(sock), "--namespace", "k8s.io", "images", "import", "--no-unpack",
                    str(archive(pause, work))], check=True, capture_output=True, timeout=120)
    manifests = work / "manifests"
    manifests.mkdir()
    (manifests / "sleeper.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "namespace": "default"},
        "spec": {"containers": [{"name": "sleeper", "image": pause, "imagePullPolicy": "Never"}]}}))
    kubelet = work / "kubelet"
    conf = write_kubelet_config(kubelet, sock, node_ip, {"staticPodPath": str(manifests)})
    procs.append(subprocess.Popen([str(TOOLS / "kubelet"), f"--config={conf}", f"--root-dir={kubelet / 'root'}",
                                   f"--cert-dir={kubelet / 'certs'}", f"--node-ip={node_ip}", "--v=1"],
                                  stdout=open(work / "kubelet.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                  start_new_session=True))
    return [p.pid for p in procs], str(d)


def _stop(proc: subprocess.Popen, grace: float = 15) -> list[str]:
    try:
        os.killpg(proc.pid, 15)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            return [f"process {proc.pid} survived SIGKILL"]
    return []
