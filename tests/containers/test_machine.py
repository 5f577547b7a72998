"""A SIGTERM in the middle of the tier (CI's time limit, an operator's kill) still restores the machine.

A child process records the machine, starts containerd and a standalone kubelet in a network namespace of
its own (no control plane needed: the kubelet changes the machine as it starts), reports what changed, and
is sent SIGTERM. After it exits, the machine must equal the record: sysctls, kubepods cgroups,
/run/containerd, mounts, and no process of the child left running.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from support import ROOT, wait_for

from .machine import MachineState

pytestmark = pytest.mark.timeout(600)

CHILD = Path(__file__).with_name("sigterm_child.py")


def test_sigterm_restores_what_the_kubelet_changed():
    before = MachineState.record()
    assert not before.cgroups, f"kubepods cgroups exist before the test: {before.cgroups}"
    work = Path(tempfile.mkdtemp(prefix="teamhub-sigterm-"))
    report = work / "changed.json"
    log = open(work / "child.log", "wb")  # noqa: SIM115
    child = subprocess.Popen([sys.executable, str(CHILD), str(work), str(report)], cwd=ROOT, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: report.exists() or child.poll() is not None, "the child's kubelet to change the machine", timeout=240)
        assert report.exists(), f"the child exited ({child.returncode}):\n{(work / 'child.log').read_text()[-3000:]}"
        changed = json.loads(report.read_text())
        descendants = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        child.send_signal(signal.SIGTERM)
        child.wait(120)
    finally:
        if child.poll() is None:  # a failure above: the child restores on SIGTERM, as it should
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(120)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(30)
        log.close()
        # Backstop, whatever happened to the child: its processes (their command lines name its folder) and
        # anything it changed go, so that a failure here never leaves the machine changed for the next tests.
        before.pids, before.shim_marker, before.own = [child.pid], str(work), [str(work)]
        leftover = before.restore()
        assert not leftover, f"the test left changes on this machine: {leftover}"
    output = (work / "child.log").read_text()
    # The child saw the kubelet change the machine (else this test would prove nothing)...
    assert any(c.startswith("cgroup ") for c in changed), changed
    assert any(c.startswith("sysctl kernel/panic ") or c.startswith("sysctl vm/overcommit_memory") for c in changed), changed
    assert any(c.startswith("/run/containerd") for c in changed), changed
    # ...and after SIGTERM everything is as it was, and nothing of it runs.
    assert child.returncode == -signal.SIGTERM, (child.returncode, output[-3000:])
    assert "restore failures: []" in output, output[-3000:]
    assert before.changes() == [], before.changes()
    assert not [p for p in descendants if _alive(p)], "a process of the child survived"
    shutil.rmtree(work, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # gone between listing and looking: that is what we want
        return False
