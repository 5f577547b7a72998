"""The tier's own network namespace: a holder process keeps it alive, and the test process's main thread
enters it for the tier's duration (setns changes only the calling thread; what that thread starts inherits it).

The kubelet refuses a loopback node IP and the API server must sit on the `kubernetes` Service's address for
pods to reach it without kube-proxy: both addresses go on this namespace's `lo`, so the machine's own links,
iptables and ip_forward stay untouched, and leaving the namespace leaves no trace.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

from support import wait_for

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class NetNs:
    def __init__(self, addresses=(), tag: str = "teamhub-netns"):
        self.addresses, self.tag = addresses, tag  # tag: in the holder's command line, to find it after a crash
        self.holder: subprocess.Popen | None = None
        self.home: int | None = None  # the machine's namespace, to go back to

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def start(self) -> NetNs:
        own = os.readlink("/proc/self/ns/net")
        self.holder = subprocess.Popen(["unshare", "--net", "--", sys.executable, "-c", "import signal; signal.pause()", self.tag],
                                       stdin=subprocess.DEVNULL, start_new_session=True)

        def unshared():
            if self.holder.poll() is not None:
                raise AssertionError(f"unshare --net exited with status {self.holder.returncode}")
            try:
                return os.readlink(self.path) != own
            except OSError:
                return False
        wait_for(unshared, "the network namespace's holder process", timeout=30, interval=0.05)
        self.run("ip", "link", "set", "lo", "up")
        for address in self.addresses:
            self.run("ip", "addr", "add", f"{address}/32", "dev", "lo")
        return self

    def run(self, *argv) -> subprocess.CompletedProcess:
        r = subprocess.run(["nsenter", f"--net={self.path}", "--", *argv], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in the tier's network namespace failed: {r.stderr}")
        return r

    def enter(self) -> None:
        """This thread (the test process's main thread) and what it starts from now on live in the namespace."""
        if self.home is None:
            self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            setns(fd)
        finally:
            os.close(fd)

    def leave(self) -> None:
        if self.home is not None:
            setns(self.home)
            os.close(self.home)
            self.home = None

    def inside(self) -> bool:
        return self.holder is not None and Path("/proc/thread-self/ns/net").readlink() == Path(self.path).readlink()
