"""What the containers tier changes on this machine, recorded before and put back after, SIGTERM included.

A real kubelet and containerd change the machine they run on: the kubelet sets kernel sysctls (there is no
warn-only mode) and makes `kubepods` cgroups in every hierarchy; containerd makes /run/containerd (its shims'
sockets are fixed there), the pods' network namespaces are bind mounts in /run/netns, and CNI caches results in
/var/lib/cni. `MachineState.record()` notes all of it first; `restore()` ends every process of the tier and
puts each thing back, trying every step even when one fails, and returns what it could not restore.

Stopping a process that has already gone counts as stopped: processes exit between being listed and being
signalled (a container's children, a shim), and that is the outcome the teardown wants anyway.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
CGROUPS = Path("/sys/fs/cgroup")
# Fixed paths containerd, CRI, CNI and the kubelet use whatever their configuration says.
PATHS = ("/run/containerd", "/run/netns", "/var/run/netns", "/var/lib/cni", "/var/log/containers", "/var/log/pods",
         "/var/lib/kubelet", "/var/lib/containerd", "/opt/containerd")
GONE = (psutil.NoSuchProcess, ProcessLookupError)


def stop_processes(procs, grace: float = 10) -> list[str]:
    """SIGTERM each (psutil.Process), SIGKILL what is left after `grace` seconds. Already gone = stopped.
    Returns the ones still alive at the end (as text), which is a failure."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        try:
            p.terminate()
        except GONE:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except GONE:
            pass
    _, alive = psutil.wait_procs(alive, timeout=grace)
    return [f"process {p.pid} still running" for p in alive if _running(p)]


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except GONE:
        return False


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants, children first (an exited one is simply not listed)."""
    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True)[::-1], root]
    except GONE:
        return []


def sysctl(name: str) -> str:
    return (Path("/proc/sys") / name).read_text().strip()


def mountpoints() -> list[str]:
    """This mount namespace's mount points (the tier runs in the machine's), in mount order."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))  # \040 for spaces
    return points


def kubepods_cgroups() -> list[Path]:
    return sorted(p for h in CGROUPS.iterdir() if h.is_dir() for p in h.glob("kubepods*") if p.is_dir())


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@dataclass
class MachineState:
    """Created by record(); `own` are the folders the tier itself made (its temp folder), whose mounts go too."""

    sysctls: dict = field(default_factory=dict)
    existing: set = field(default_factory=set)
    mounts: set = field(default_factory=set)
    cgroups: set = field(default_factory=set)
    own: list = field(default_factory=list)
    pids: list = field(default_factory=list)  # roots of the process trees the tier started
    shim_marker: str = ""  # text in the command line of every process of the tier (its folder), shims included

    @classmethod
    def record(cls, *own: Path) -> MachineState:
        return cls(sysctls={s: sysctl(s) for s in SYSCTLS if (Path("/proc/sys") / s).exists()},
                   existing={p for p in PATHS if os.path.lexists(p)}, mounts=set(mountpoints()),
                   cgroups=set(kubepods_cgroups()), own=[str(p) for p in own])

    def changes(self) -> list[str]:
        """What differs from the record now (empty once restore() has done its work)."""
        out = [f"sysctl {s} is {sysctl(s)}, was {v}" for s, v in self.sysctls.items() if sysctl(s) != v]
        out += [f"{p} exists, it did not" for p in PATHS if p not in self.existing and os.path.lexists(p)]
        out += [f"mount {m} is new" for m in mountpoints() if m not in self.mounts]
        out += [f"cgroup {c} is new" for c in kubepods_cgroups() if c not in self.cgroups]
        return out

    # --- restore: every step is tried; failures are collected -------------------------------------
    def restore(self) -> list[str]:
        failures: list[str] = []

        def step(what, fn, *args):
            try:
                result = fn(*args)
                if result:
                    failures.extend(f"{what}: {r}" for r in result)
            except GONE:
                pass  # already gone is what stopping wanted
            except Exception as exc:  # noqa: BLE001 - report every failure, go on with the next step
                failures.append(f"{what}: {exc!r}")

        step("stopping the tier's processes", self._stop_processes)
        step("stopping the containers' processes", self._stop_container_processes)
        step("unmounting", self._unmount)
        step("removing kubepods cgroups", self._remove_cgroups)
        step("removing run folders", self._remove_paths)
        step("restoring sysctls", self._restore_sysctls)
        return failures

    def _stop_processes(self) -> list[str]:
        procs = [p for pid in self.pids for p in tree(pid)]
        if self.shim_marker:  # shims leave containerd's process tree on purpose (they outlive a restart)
            for p in psutil.process_iter(["cmdline"]):
                try:
                    if any(self.shim_marker in a for a in p.info["cmdline"] or ()):
                        procs += tree(p.pid)
                except GONE:
                    pass
        spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}  # never this test process
        return stop_processes([p for pid, p in {p.pid: p for p in procs}.items() if pid not in spared])

    def _stop_container_processes(self) -> list[str]:
        procs = []
        for group in kubepods_cgroups():
            if group in self.cgroups:
                continue
            for procs_file in group.rglob("cgroup.procs"):
                try:
                    pids = [int(x) for x in procs_file.read_text().split()]
                except OSError:
                    continue
                for pid in pids:
                    try:
                        procs.append(psutil.Process(pid))
                    except GONE:
                        pass
        return stop_processes(procs, grace=5)

    def _unmount(self) -> list[str]:
        roots = [*self.own, *(p for p in PATHS if p not in self.existing), "/run/netns", "/var/run/netns"]
        failed = []
        for point in reversed(mountpoints()):  # deepest (latest) first
            if point in self.mounts or not _under(point, roots):
                continue
            r = subprocess.run(["umount", "--lazy", point], capture_output=True, text=True, timeout=30)
            if r.returncode != 0 and point in mountpoints():
                failed.append(f"{point}: {r.stderr.strip()}")
        return failed

    def _remove_cgroups(self) -> list[str]:
        failed = []
        for group in kubepods_cgroups():
            if group in self.cgroups:
                continue
            for d in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [group]:
                for attempt in range(50):  # a cgroup is busy for a moment after its last process exits
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError as exc:
                        if attempt == 49:
                            failed.append(f"{d}: {exc}")
                        time.sleep(0.1)
        return failed

    def _remove_paths(self) -> list[str]:
        failed = []
        for p in PATHS:
            if p in self.existing or not os.path.lexists(p):
                continue
            try:
                if os.path.islink(p):
                    os.unlink(p)
                else:
                    shutil.rmtree(p)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append(f"{p}: {exc}")
        return failed

    def _restore_sysctls(self) -> list[str]:
        failed = []
        for name, value in self.sysctls.items():
            try:
                if sysctl(name) != value:
                    (Path("/proc/sys") / name).write_text(value)
            except OSError as exc:
                failed.append(f"{name}: {exc}")
        return failed


def restore_on_sigterm(restore) -> None:
    """SIGTERM (CI's timeout, an operator's kill) runs `restore` and then exits as a SIGTERM would."""
    def handler(signum, frame):
        signal.signal(signum, signal.SIG_DFL)
        try:
            restore()
        finally:
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)
