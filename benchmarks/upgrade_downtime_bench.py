"""Hub downtime during upgrades (a script, not a test): `.venv/bin/python benchmarks/upgrade_downtime_bench.py`.

On the cluster tier's control plane (tests/cluster: etcd, kube-apiserver, controller manager, scheduler, kwok
nodes), through scripts/helm_update.sh and scripts/rollback.sh as an operator runs them, it measures for:
  - a successful upgrade (a new hub image tag),
  - each failed upgrade of tests/cluster/operator.py (stopped by the pre-upgrade check Job),
  - the same failure with the check turned off (hub.upgradeCheck.enabled: false, helm --timeout 1m): how long
    the outage was before the check existed,
  - rollback.sh after them,
the seconds with no Ready hub pod (what the hub Service routes to; polled every 50 ms) and the script's run
time. Under kwok no hub process runs, and kwok marks a scheduled pod Ready at once: a real hub adds its own
start time to every outage counted here (benchmarks/hub_bench.py measures that start time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub-image")]

from cluster.access import Cluster  # noqa: E402
from cluster.operator import FAILED_UPGRADES, HubAvailability, base_values, helm_update, overlay, run_script  # noqa: E402

NEW_TAG = {"hub": {"image": {"name": "ghcr.io/example-university/teamhub-hub", "tag": "0.1.1-bench"}}}


def measure(cluster, ns, label, run) -> tuple[str, float, float, int]:
    with HubAvailability(cluster, ns) as hub:
        t0 = time.monotonic()
        proc = run()
        took = time.monotonic() - t0
        time.sleep(0.5)  # a last sample after the script returned
    print(f"  {label}: exit {proc.returncode}, {took:.1f} s, hub down {hub.downtime():.1f} s", flush=True)
    return label, took, hub.downtime(), proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-check-timeout", default="1m", help="helm --timeout for the upgrade without the check")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cluster = Cluster.start(work / "cluster")
        try:
            ns = cluster.new_namespace("downtime-bench")
            cluster.hub_loopback.namespace = ns
            values = base_values(work)
            tagged = [*values, overlay(work, "new-tag", NEW_TAG)]
            rows = []
            print("install ...", flush=True)
            assert helm_update(cluster, ns, values).returncode == 0, "the first install failed"
            rows.append(measure(cluster, ns, "successful upgrade (new hub tag)", lambda: helm_update(cluster, ns, tagged)))
            for case, bad in FAILED_UPGRADES.items():
                path = overlay(work, case, bad)
                rows.append(measure(cluster, ns, f"failed upgrade, {case}", lambda p=path: helm_update(cluster, ns, [*tagged, p])))
            case, bad = next(iter(FAILED_UPGRADES.items()))
            off = overlay(work, "check-off", {"hub": {"upgradeCheck": {"enabled": False}}})
            path = overlay(work, case, bad)
            rows.append(measure(cluster, ns, f"failed upgrade without the check, {case}",
                                lambda: helm_update(cluster, ns, [*tagged, path, off], "--timeout", args.no_check_timeout)))
            rows.append(measure(cluster, ns, "rollback.sh after the failures", lambda: run_script(cluster, "rollback.sh", ns)))
        finally:
            leftover = cluster.stop()
            assert not leftover, leftover
    print("\nhub downtime (seconds with no Ready hub pod; under kwok, add the real hub's start time):")
    print(f"  {'operation':<66} {'exit':>4} {'script s':>9} {'down s':>7}")
    for label, took, down, rc in rows:
        print(f"  {label:<66} {rc:>4} {took:>9.1f} {down:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
