"""`teamhub demo` owns every process it starts (issue 11, item 7): started in the background (SIGINT
ignored, as a shell does for `&`) and stopped with SIGTERM, it leaves no hub, proxy, idle culler or
person's server behind; when its hub is killed it ends the rest; and the next start ends what a demo
killed with SIGKILL left running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from hubprocess import DEMO_VALUES, ROOT, HubProcess, demo_passwords
from support import tree_env
from teamhub.cli.demo import PROCESS_FILE, free_port

VALUES = DEMO_VALUES  # what `make demo` runs


class Demo:
    def __init__(self, state):
        self.state, self.port = state, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout: float = 120) -> Demo:
        def ignore_sigint():
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        self.log = open(self.state / "demo.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "teamhub", "demo", "--values", *map(str, VALUES), "--port", str(self.port),
                                      "--state", str(self.state)], env=tree_env(), cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=ignore_sigint)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.text()
            try:
                if httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(self.text())

    def text(self, tail: int = 4000) -> str:
        self.log.flush()
        return (self.state / "demo.log").read_text(errors="replace")[-tail:]

    def processes(self) -> dict[str, psutil.Process]:
        """The demo's descendants by role: hub, proxy, culler, and singleuser servers."""
        roles = {}
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            cmd = " ".join(p.cmdline())
            role = ("proxy" if "configurable-http-proxy" in cmd else "culler" if "jupyterhub_idle_culler" in cmd
                    else "server" if "singleuser" in cmd else "hub" if "jupyterhub" in cmd else None)
            if role:
                roles[role] = p
        return roles

    def wait_roles(self, roles: set, timeout: float = 60) -> dict[str, psutil.Process]:
        end = time.monotonic() + timeout
        while not roles <= set(found := self.processes()):
            assert time.monotonic() < end, f"{roles - set(found)} not running:\n{self.text()}"
            time.sleep(0.3)
        return found

    def wait_recorded(self, procs: dict[str, psutil.Process], timeout: float = 60) -> None:
        """Until the demo's process file names every one of procs (what a killed demo's next start reads)."""
        path = self.state / PROCESS_FILE
        end = time.monotonic() + timeout
        while True:
            try:
                known = {int(pid) for pid in json.loads(path.read_text())}
            except (FileNotFoundError, ValueError):
                known = set()
            if {p.pid for p in procs.values()} <= known:
                return
            assert time.monotonic() < end, f"{path} never named {procs}:\n{self.text()}"
            time.sleep(0.2)


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_gone(procs: dict, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while any(alive(p) for p in procs.values()) and time.monotonic() < end:
        time.sleep(0.2)
    left = {role: p.pid for role, p in procs.items() if alive(p)}
    assert not left, f"still running: {left}"


@pytest.fixture
def leftovers():
    """Whatever a failing test leaves is ended here (never by name: only processes these tests started)."""
    procs: list[psutil.Process] = []
    yield procs
    for p in procs:
        if alive(p):
            p.kill()


def test_sigterm_stops_hub_proxy_culler_and_servers(tmp_path, leftovers):
    demo = Demo(tmp_path).start()
    client_side = HubProcess(VALUES, tmp_path, port=demo.port)  # only its HTTP helpers; the demo runs the hub
    client = client_side.login("alice", demo_passwords()["alice"])
    api = client_side.api(client_side.token(client, "local:alice"))
    assert api.post("/users/local:alice/server", json={"resource": "cpu-small", "sessionMinutes": 30}).status_code in (201, 202)
    client_side.wait_ready(api, "local:alice")
    procs = demo.wait_roles({"hub", "proxy", "culler", "server"})
    leftovers.extend([psutil.Process(demo.proc.pid), *procs.values()])

    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(90) == 0, demo.text()
    assert_all_gone(procs)
    assert not (tmp_path / "demo-processes.json").exists()


def test_a_killed_hub_takes_its_proxy_and_culler_with_it(tmp_path, leftovers):
    demo = Demo(tmp_path).start()
    procs = demo.wait_roles({"hub", "proxy", "culler"})
    leftovers.extend(procs.values())
    demo.wait_recorded(procs)
    procs["hub"].kill()
    assert demo.proc.wait(60) != 0
    assert_all_gone(procs)
    assert "stopping what it left running" in demo.text(tail=10**7)


def test_the_next_start_ends_what_a_killed_demo_left(tmp_path, leftovers):
    demo = Demo(tmp_path).start()
    procs = demo.wait_roles({"hub", "proxy", "culler"})
    leftovers.extend(procs.values())
    demo.wait_recorded(procs)
    demo.proc.kill()  # the demo and its hub die at once (a closed terminal, the OOM killer)
    procs["hub"].kill()
    demo.proc.wait(10)
    assert alive(procs["proxy"]) and alive(procs["culler"])  # left behind

    again = Demo(tmp_path).start()
    fresh = again.wait_roles({"hub", "proxy", "culler"})
    leftovers.extend([psutil.Process(again.proc.pid), *fresh.values()])  # ended even if an assertion fails
    assert_all_gone({k: procs[k] for k in ("proxy", "culler")})
    assert "a previous demo left running" in again.text(tail=10**7)
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(90) == 0
    assert_all_gone(fresh)
