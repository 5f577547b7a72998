"""Fixtures of the containers tier (`make test-containers`; part of `make test`).

`images`: hub and base-cpu built through scripts/build_images.sh, plus pause and the proxy stand-in.
`node`: control plane + containerd + a real kubelet in the tier's network namespace (node.py); the test
process's main thread is inside that namespace while the tier runs, so kubectl, helm and HTTP clients reach
pods directly. `release`: the chart installed with helm onto that node.

Everything is package-scoped: it ends when the tier's last test has run, before any other tier continues,
and its teardown restores the machine (machine.py) and fails the tier if anything could not be restored.
The tier works in its own temp folder: pytest's numbered folders can be removed under it by other sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import yaml
from cluster import course
from cluster.access import RESTRICTED
from cluster.hub import people_overlay
from support import ROOT, TOOLS, wait_for

from .images import Images, build_all
from .node import Node

RELEASE = "teamhub"
NAMESPACE = "course"
PERSON = "erin"  # a local account with "erin-demo-pass"; every person may start cpu-small
OVERLAY = Path(__file__).with_name("values.yaml")
HUB_COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="package")
def work():
    path = Path(tempfile.mkdtemp(prefix="teamhub-containers-"))
    path.chmod(0o755)  # the pods' users read the host paths of their volumes below it
    yield path
    if not (path / "KEEP").exists():
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def images(work) -> Images:
    (work / "images").mkdir()
    return build_all(work / "images")


@pytest.fixture(scope="package")
def node(work, images):
    n = Node(work, images)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # CI's time limit or a kill: the machine still gets its state back
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            n.stop()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            n.start()
        except BaseException:
            failures = n.stop()
            (work / "KEEP").touch()  # the logs explain the failure
            if failures:
                print(f"the tier left changes on this machine: {failures}")
            raise
        yield n
        failures = n.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failures:
        (work / "KEEP").touch()
    assert not failures, f"the tier left changes on this machine: {failures}"
    assert not n.machine.changes(), f"the machine differs from before the tier: {n.machine.changes()}"


class Release:
    """The chart installed as an operator does, with helm, onto the real node."""

    def __init__(self, node: Node, images: Images, work: Path):
        self.node, self.images, self.dir = node, images, work / "release"
        self.dir.mkdir(exist_ok=True)
        self.api = node.api
        self.kubeconfig = node.plane.admin_kubeconfig

    def helm(self, *args, timeout: float = 600):
        import subprocess

        r = subprocess.run([str(TOOLS / "helm"), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.dir)})
        if r.returncode != 0:
            raise AssertionError(f"helm {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                                 f"{self.describe()}")
        return r

    def values_files(self, *extra: Path) -> list[str]:
        name, tag = self.images.base_cpu.rsplit(":", 1)
        proxy_name, proxy_tag = self.images.proxy.rsplit(":", 1)
        pause_name, pause_tag = self.images.pause.rsplit(":", 1)
        built = self.dir / "built-images.yaml"
        built.write_text(yaml.safe_dump({
            "proxy": {"image": {"name": proxy_name, "tag": proxy_tag}},
            "prePuller": {"pause": {"name": pause_name, "tag": pause_tag}},
            "catalog": {"images": {"scipy": {"name": name, "tag": tag}}},
        }))
        people = people_overlay(self.dir / "people.yaml", {PERSON: []})
        files = [self.images.values, OVERLAY, built, people, *extra]
        return [a for f in files for a in ("-f", str(f))]

    def install(self, *extra: Path):
        return self.helm("upgrade", "--install", RELEASE, ROOT / "chart", "-n", NAMESPACE, *self.values_files(*extra),
                         "--wait", "--timeout=8m")

    def pods(self, component: str | None = None) -> list[dict]:
        selector = f"?labelSelector={HUB_COMPONENT}%3D{component}" if component else ""
        return self.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods{selector}")["items"]

    def running_pod(self, component: str) -> dict:
        def ready():
            pods = [p for p in self.pods(component) if not p["metadata"].get("deletionTimestamp")
                    and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
            return pods[0] if len(pods) == 1 else None
        return wait_for(ready, f"one Ready {component} pod", timeout=300, interval=0.5)

    def describe(self) -> str:
        """Pods and recent events: what a failure message needs."""
        try:
            pods = [(p["metadata"]["name"], p["status"].get("phase"), [(s["name"], s.get("restartCount"), s.get("state"))
                     for s in p["status"].get("containerStatuses", [])]) for p in self.pods()]
            events = [f"{e.get('involvedObject', {}).get('name')}: {e.get('reason')} {e.get('message')}"
                      for e in self.api.get(f"/api/v1/namespaces/{NAMESPACE}/events")["items"][-25:]]
            return "pods: " + json.dumps(pods, default=str)[:4000] + "\nevents:\n" + "\n".join(events)
        except Exception as exc:  # noqa: BLE001 - a description must never hide the real failure
            return f"(could not describe the release: {exc!r})"

    def ran_on_node(self, name_part: str) -> list[str]:
        """Pods whose status the kubelet itself wrote (audit log): they ran on the real node."""
        names = set()
        for line in self.node.plane.audit_log.read_text().splitlines():
            e = json.loads(line)
            ref = e.get("objectRef") or {}
            if (e.get("user", {}).get("username") == "system:node:teamhub-node" and ref.get("resource") == "pods"
                    and ref.get("subresource") == "status" and name_part in ref.get("name", "")):
                names.add(ref["name"])
        return sorted(names)


@pytest.fixture(scope="package")
def release(node, images, work) -> Release:
    api = node.api
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": NAMESPACE, "labels": RESTRICTED}})
    api.create("/apis/storage.k8s.io/v1/storageclasses", course.storage_class())
    for number in range(1, 5):  # the hub's database and homes: folders the pods' users (1000) can write
        folder = work / "volumes" / f"pv-{number}"
        folder.mkdir(parents=True)
        os.chown(folder, 1000, 100)
        api.create("/api/v1/persistentvolumes", course.volume(f"pv-{number}", folder))
    wait_for(lambda: api.ok(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"), "the namespace's ServiceAccount",
             timeout=60)
    r = Release(node, images, work)
    r.install()
    return r
