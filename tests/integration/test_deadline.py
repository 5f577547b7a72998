"""A session's deadline ends the server for real (issue 11, item 6): its process is gone and its port no
longer answers, in a plain session, across a `kill -9` of the hub and restart, and when the deadline passes
while the hub is down; the team's quota place is given back at the deadline and kept across the restart.

The hub runs with the test clock TEAMHUB_TEST_CLOCK_FILE (teamhub/hub/sessions.py): the test moves the hub's
idea of "now" past a deadline once the server is up, however long a start takes on a busy machine, while
people still choose sessions of at least a minute.
"""

from __future__ import annotations

import socket
import time

import psutil
import pytest
from hubprocess import clock_hub

# Session lengths in minutes. Real minutes pass too, so even the shorter one outlasts the slowest start of
# JupyterLab on a loaded machine; the test clock, not waiting, brings each deadline.
SHORT, LONG = 30, 60
PASSWORD = "deadline-test-pass"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    def edit(values):
        values["catalog"]["teams"]["workshop"] = {"resources": ["cpu-small"], "quota": {"maxServers": 1}}
        values["catalog"]["teams"]["everyone"]["resources"] = ["cpu-large"]  # cpu-small only through workshop

    h = clock_hub(tmp_path_factory.mktemp("deadline-hub"), PASSWORD, {"erin": ["workshop"], "frank": ["workshop"]}, edit)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def apis(hub):
    out = {}
    for name in ("ada", "alice", "erin", "frank"):
        client = hub.login(name, PASSWORD)
        out[name] = hub.api(hub.token(client, f"local:{name}"))
    return out


class Server:
    """A running user server as the machine sees it: its process, its port, its deadline."""

    def __init__(self, hub, admin, name):
        self.name = name
        state = admin.get(f"/users/local:{name}").json()["servers"][""]["state"]
        self.deadline = state["teamhub"]["deadline"]
        self.proc = psutil.Process(state["pid"])
        self.port = next(c.laddr.port for c in self.proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN)

    def answers(self) -> bool:
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def running(self) -> bool:
        try:
            return self.proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def wait_gone(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and (self.running() or self.answers()):
            time.sleep(0.25)
        assert not self.running(), f"{self.name}'s server (pid {self.proc.pid}) still runs {timeout}s after its deadline"
        assert not self.answers(), f"{self.name}'s port {self.port} still answers after the deadline"


def pass_deadline(hub, server: Server) -> None:
    """Move the hub's test clock to one second past the server's deadline."""
    offset = float(hub.clock_file.read_text()) if hub.clock_file.exists() else 0.0
    hub.clock_file.write_text(str(max(offset, server.deadline + 1 - time.time())))


def start(hub, api, name: str, resource: str, minutes: int) -> None:
    r = api.post(f"/users/local:{name}/server", json={"resource": resource, "sessionMinutes": minutes})
    assert r.status_code in (201, 202), r.text


def ready(hub, api, admin, name: str) -> Server:
    hub.wait_ready(api, f"local:{name}")
    server = Server(hub, admin, name)
    assert server.answers()
    return server


def refused_by_quota(api, name: str) -> bool:
    r = api.post(f"/users/local:{name}/server", json={"resource": "cpu-small", "sessionMinutes": LONG})
    if r.status_code == 403:
        assert "already runs 1 of its 1 allowed servers" in r.json()["message"], r.text
        return True
    assert r.status_code in (201, 202), r.text
    return False


def stopped_in_hub(admin, name: str, timeout: float = 30) -> bool:
    """The hub forgets the server (the poll that ended it is followed by the hub's own clean-up)."""
    end = time.monotonic() + timeout
    while admin.get(f"/users/local:{name}").json()["servers"] != {}:
        if time.monotonic() > end:
            return False
        time.sleep(0.25)
    return True


def test_a_session_ends_at_its_deadline_and_gives_back_its_quota(hub, apis):
    admin = apis["ada"]
    start(hub, apis["erin"], "erin", "cpu-small", SHORT)
    erin = ready(hub, apis["erin"], admin, "erin")
    assert refused_by_quota(apis["frank"], "frank")

    time.sleep(2)  # a few polls before the deadline: the server keeps running
    assert erin.running() and erin.answers()
    pass_deadline(hub, erin)
    erin.wait_gone()
    assert stopped_in_hub(admin, "erin")
    assert not refused_by_quota(apis["frank"], "frank")  # the place came back at the deadline
    hub.wait_ready(apis["frank"], "local:frank")
    assert apis["frank"].delete("/users/local:frank/server").status_code in (202, 204)


def test_deadlines_hold_across_a_hub_kill_and_restart(hub, apis):
    admin = apis["ada"]
    assert stopped_in_hub(admin, "frank")
    start(hub, apis["alice"], "alice", "cpu-large", SHORT)  # its deadline passes while the hub is down
    start(hub, apis["erin"], "erin", "cpu-small", LONG)  # its deadline passes after the restart
    alice = ready(hub, apis["alice"], admin, "alice")
    erin = ready(hub, apis["erin"], admin, "erin")
    assert alice.deadline < erin.deadline

    hub.crash()
    assert alice.answers() and erin.answers()  # servers outlive a crashed hub
    pass_deadline(hub, alice)  # alice's deadline passes while the hub is down
    assert alice.answers()  # nobody has stopped it yet: the hub is down
    hub.start()
    alice.wait_gone()  # the restarted hub ended the session whose deadline passed while it was down
    assert stopped_in_hub(admin, "alice")

    assert erin.running() and erin.answers()
    assert refused_by_quota(apis["frank"], "frank")  # erin's place was restored by the restarted hub

    pass_deadline(hub, erin)
    erin.wait_gone()
    assert stopped_in_hub(admin, "erin")
    assert not refused_by_quota(apis["frank"], "frank")
