"""Test-only stand-in for the kubelet's container runtime: when kwok marks a user pod Running, start
`jupyterhub-singleuser` with the pod's command, args and env on the pod's (loopback) IP; stop it when the
pod is being deleted. The executable is the test environment's, as on a cluster it comes from the user
image, not the hub's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .controlplane import Api

SELECTOR = "app.kubernetes.io/component=singleuser-server"
BIN = Path(sys.executable).parent


class SingleUserServers:
    def __init__(self, api: Api, namespace: str, hub_api_url: str, directory: Path):
        self.api, self.namespace, self.dir = api, namespace, directory
        self.hub_api_url = hub_api_url
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list = []

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        for name in list(self.procs):
            self._end(name)

    def _follow(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={SELECTOR}"
        try:
            listing = self.api.get(path)
            version = listing["metadata"]["resourceVersion"]
            for pod in listing["items"]:
                self._seen("MODIFIED", pod)
            while not self._stop.is_set():
                for event in self.api.watch(path, version, timeout_seconds=1):
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch {path}: {event['object'].get('message')}")
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._seen(event["type"], event["object"])
        except Exception as exc:  # the test sees it: a server that never starts, and this error
            self.errors.append(exc)

    def _seen(self, kind: str, pod: dict) -> None:
        name = pod["metadata"]["name"]
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            self._end(name)
        elif pod["status"].get("phase") == "Running" and pod["status"].get("podIP") and name not in self.procs:
            self._run(pod)

    def _run(self, pod: dict) -> None:
        container = pod["spec"]["containers"][0]
        ip = pod["status"]["podIP"]
        argv = [*(container.get("command") or ["jupyterhub-singleuser"]), *(container.get("args") or [])]
        argv = [f"--ip={ip}" if a.startswith("--ip=") else a for a in argv]
        argv[0] = str(BIN / argv[0]) if "/" not in argv[0] else argv[0]
        home = self.dir / pod["metadata"]["name"]
        home.mkdir(parents=True, exist_ok=True)
        env = {e["name"]: e.get("value", "") for e in container.get("env", []) if "value" in e}
        service_url = env.get("JUPYTERHUB_SERVICE_URL", "")
        if service_url:
            env["JUPYTERHUB_SERVICE_URL"] = service_url.replace("0.0.0.0", ip)
        env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        if os.geteuid() == 0:
            argv.append("--allow-root")
        log = open(home / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[pod["metadata"]["name"]] = subprocess.Popen(argv, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
                                                               start_new_session=True)

    def _end(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def running(self) -> set[str]:
        return {n for n, p in self.procs.items() if p.poll() is None}
