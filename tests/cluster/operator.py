"""The operator's side against the tier's cluster: scripts/helm_update.sh and scripts/rollback.sh run as an
operator runs them (this tree's helm, kubectl and teamhub; the admin kubeconfig; --yes, no terminal), and a
watch of the hub's availability for the downtime figures (benchmarks/upgrade_downtime_bench.py)."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from pathlib import Path

import yaml
from support import ROOT, TOOLS

from .access import Cluster
from .chart import RELEASE, VALUES
from .inpod import HUB_PODS, ready

SCRIPTS = ROOT / "scripts"
# The check Job's deadline in the tier: long enough for kwok to schedule and complete a good check (about a
# second), short enough that a check that cannot be scheduled fails the upgrade quickly.
CHECK_SECONDS = 20
FAILED_UPGRADES = {  # case -> values overlay that makes the new hub impossible to start
    "node selector that matches nothing": {"hub": {"nodeSelector": {"node-type": "no-such-node"}}},
    "resources no node has": {"hub": {"resources": {"requests": {"cpu": "500", "memory": "512Mi"}}}},
}


def overlay(directory: Path, name: str, values: dict) -> Path:
    path = directory / f"{name.replace(' ', '-')}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def base_values(directory: Path) -> list[Path]:
    """config/values.yaml, the tier's overlay, and the check's short deadline."""
    return [*VALUES, overlay(directory, "check-deadline", {"hub": {"upgradeCheck": {"timeoutSeconds": CHECK_SECONDS}}})]


def script_env(cluster: Cluster, helm: str) -> dict:
    """The scripts call `helm`: for "helm4", a directory first on PATH where `helm` is this tree's Helm 4."""
    env = cluster.env()
    if helm == "helm4":
        shim = cluster.dir / "helm4-bin"
        shim.mkdir(exist_ok=True)
        if not (shim / "helm").exists():
            (shim / "helm").symlink_to(TOOLS / "helm4")
        env["PATH"] = f"{shim}:{env['PATH']}"
    return env


def run_script(cluster: Cluster, script: str, namespace: str, *args, helm: str = "helm3",
               timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [str(SCRIPTS / script), "--release", RELEASE, "--namespace", namespace, "--yes", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, env=script_env(cluster, helm), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def helm_update(cluster: Cluster, namespace: str, values: list[Path], *args, **kwargs) -> subprocess.CompletedProcess:
    """helm_update.sh with values[0] as --values and the rest as -f, in order."""
    extra = [a for v in values[1:] for a in ("-f", v)]
    return run_script(cluster, "helm_update.sh", namespace, "--values", values[0], *extra, *args, **kwargs)


class HubAvailability:
    """Polls the API every `interval` s while running: is there a Ready hub pod (what the hub Service routes
    to)? `downtime()` is the seconds without one. Under kwok this is the closest honest observable of
    "/hub/health answers" (see inpod.py): it leaves out the real hub's own start time."""

    def __init__(self, cluster: Cluster, namespace: str, interval: float = 0.05):
        self.api, self.path, self.interval = cluster.api, f"/api/v1/namespaces/{namespace}/pods?labelSelector={HUB_PODS}", interval
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HubAvailability:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            up = any(ready(p) for p in self.api.get(self.path)["items"])
            self.samples.append((time.monotonic(), up))
            self._stop.wait(self.interval)

    def downtime(self) -> float:
        """Seconds between a sample that saw no ready hub and the next sample."""
        return sum(b[0] - a[0] for a, b in itertools.pairwise(self.samples) if not a[1])
