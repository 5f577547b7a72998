"""The child of test_machine.py: containerd and a standalone kubelet in their own network namespace, until
SIGTERM. Writes what the kubelet changed on the machine to REPORT once it has; restores on SIGTERM.

    python sigterm_child.py WORK REPORT
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "hub-image")]

from containers.machine import MachineState, restore_on_sigterm  # noqa: E402
from containers.netns import NetNs  # noqa: E402
from containers.node import standalone_kubelet  # noqa: E402


def main(work: Path, report: Path) -> None:
    machine = MachineState.record(work)
    netns = NetNs(("10.201.0.1",), tag=str(work))

    def restore():
        failures = machine.restore()
        print(f"restore failures: {failures}", flush=True)

    restore_on_sigterm(restore)
    netns.start()
    machine.pids.append(netns.holder.pid)
    netns.enter()
    pids, _ = standalone_kubelet(work, "10.201.0.1")
    machine.pids += pids
    machine.shim_marker = str(work)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        changed = machine.changes()
        if any(c.startswith("cgroup ") for c in changed) and any(c.startswith("/run/containerd") for c in changed) \
                and any(c.startswith("sysctl ") for c in changed):
            report.write_text(json.dumps(changed))
            break
        time.sleep(0.2)
    signal.pause()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
