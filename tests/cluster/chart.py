"""Installing the chart into the tier's cluster as an operator does: `upgrade --install --wait` with
config/values.yaml and the tier's small overlay (tests/cluster/values.yaml)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support import CONFIG, ROOT

from .access import Cluster

CHART = ROOT / "chart"
VALUES = (CONFIG / "values.yaml", Path(__file__).with_name("values.yaml"))
RELEASE = "teamhub"  # contains the chart's name, so objects are called teamhub-hub, teamhub-secrets, ...


def install(cluster: Cluster, which: str, namespace: str, *extra, release: str = RELEASE,
            timeout: str = "3m", chart: Path = CHART) -> subprocess.CompletedProcess:
    """`extra` after the tier's values: more `-f` files (they win) or flags; `chart` a folder or a packaged .tgz."""
    values = [a for v in VALUES for a in ("-f", v)]
    return cluster.helm(which, "upgrade", "--install", release, chart, "-n", namespace, *values, "--wait",
                        f"--timeout={timeout}", *extra)


def status(cluster: Cluster, which: str, namespace: str, release: str = RELEASE) -> dict:
    return json.loads(cluster.helm(which, "status", release, "-n", namespace, "-o", "json").stdout)
