"""A hub killed (SIGKILL) in the middle of a person's start, on the real control plane (issue 24): after the restart
the server is either tracked (the REST API shows it ready, its pod Running, its usage record open, the team quota
counts it) or gone (no pod, the record closed as `lost`, the quota back to 0), never a pod nobody tracks.

The points of the start: the home PVC's create and the pod's create, each held inside the API server by a test
webhook (gate.py) while the hub is killed and then refused (the write never happens: gone), and the pod Pending
with kube-scheduler stopped (SIGSTOP; adopted once it runs). Before each kill the spawner's state (the usage
record, the pod name) must already be in the database. Last, a pod whose server the database forgot (an older
backup restored) is deleted when the hub starts.

One hub per module; each test uses its own person of the team `crash-team` (quota: 10 servers), and `mona`, who
never starts anything, reads the team's quota figure on her launch page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import threading
from contextlib import closing

import httpx
import pytest
from support import wait_for

from .gate import Gate
from .hub import ClusterHub, people_overlay
from .test_hub_starts import claims, pods, spawn_outcome

TEAM, MAX_SERVERS = "crash-team", 10
PEOPLE = {name: [TEAM] for name in ("ivy", "jack", "kim", "lee", "mona")}
OVERLAY = {"catalog": {"teams": {TEAM: {"resources": ["cpu-small"], "quota": {"maxServers": MAX_SERVERS}}}}}
CPU_SMALL = {"resource": "cpu-small"}
WAIT = 180  # generous: the machine may be loaded; every wait polls for a state


@pytest.fixture(scope="module")
def hub(cluster, shipped_venv, tmp_path_factory):
    ns = cluster.new_namespace("hub-crash")
    state = tmp_path_factory.mktemp("hub-crash")
    overlay = people_overlay(state / "overlay.yaml", PEOPLE, OVERLAY)
    h = ClusterHub(cluster, ns, shipped_venv, state, overlays=(overlay,))
    h.gate = Gate(cluster.plane.pki, ns).start()
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    cluster.api.create(path, h.gate.webhook_configuration())
    try:
        probe = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "gate-probe"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        # The API server picks the webhook up within moments: wait until it calls the gate (a dry run stores nothing).
        wait_for(lambda: cluster.api.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims?dryRun=All", probe) is not None
                 and any(name == "gate-probe" for _, _, name in h.gate.seen), "the API server to call the gate", WAIT)
        h.start()
        yield h
    finally:
        h.stop()
        cluster.api.delete(f"{path}/{h.gate.name}")
        h.gate.stop()
        cluster.delete_namespace(ns)
    assert not h.servers.errors, h.servers.errors


def database(hub) -> sqlite3.Connection:
    con = sqlite3.connect(hub.state / "data" / "jupyterhub.sqlite", timeout=30)
    con.row_factory = sqlite3.Row
    return con


def usage_record(hub, user: str) -> dict | None:
    with closing(database(hub)) as con:
        row = con.execute("SELECT * FROM teamhub_usage WHERE server = ? ORDER BY id DESC LIMIT 1", (f"{user}/",)).fetchone()
    return dict(row) if row else None


def persisted_state(hub, user: str) -> dict:
    with closing(database(hub)) as con:
        row = con.execute("SELECT s.state FROM spawners s JOIN users u ON s.user_id = u.id WHERE u.name = ? AND s.name = ''",
                          (user,)).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def quota_used(hub) -> int:
    """The team's running-server figure on mona's launch page (the hub's quota book)."""
    page = hub.login("mona", "mona-demo-pass").get("/hub/spawn").text
    found = re.search(rf"(\d+) of {MAX_SERVERS} used", page)
    assert found, page[:3000]
    return int(found.group(1))


def start(hub, person: str, answered: bool = True):
    """The launch page's Start (a logged-in client and a REST API client of the person). JupyterHub answers the form
    once the start is done or after its slow_spawn_timeout; with `answered` False the form is sent from a thread and
    this returns at once, so the test can kill the hub while a held write keeps the start where it is."""
    hub.cluster.top_up_volumes()
    client = hub.login(person, f"{person}-demo-pass")
    api = hub.api(hub.token(client, f"local:{person}"))
    if not answered:
        threading.Thread(target=lambda: _quietly(hub.spawn_form, client, CPU_SMALL), daemon=True).start()
        return client, api
    r = hub.spawn_form(client, CPU_SMALL)
    assert r.status_code == 302, r.text[:500]
    return client, api


def _quietly(call, *args):
    try:
        call(*args)
    except httpx.HTTPError:  # the hub was killed while it answered
        pass


def open_record_in_state(hub, user: str) -> dict:
    """After the kill: the usage record is open and the spawner's state in the database holds it and the pod name."""
    record = usage_record(hub, user)
    assert record is not None and record["ended"] is None, record
    state = persisted_state(hub, user)
    assert state.get("teamhub", {}).get("usage") == record["id"] and state.get("pod_name"), state
    return record


def assert_gone(hub, api, user: str, record: dict) -> None:
    wait_for(lambda: not api.get(f"/users/{user}").json()["servers"], f"the restarted hub to end the server of {user}", WAIT)
    assert not pods(hub, user)
    closed = usage_record(hub, user)
    assert closed["id"] == record["id"] and closed["end_reason"] == "lost" and closed["ended"] is not None, closed
    assert quota_used(hub) == 0


@pytest.mark.parametrize("person,resource", [("ivy", "persistentvolumeclaims"), ("jack", "pods")],
                         ids=["before-the-pvc", "between-pvc-and-pod"])
def test_killed_at_a_write_of_the_start_leaves_nothing_running(hub, person, resource):
    user = f"local:{person}"
    hub.gate.hold(resource)
    try:
        _, api = start(hub, person, answered=False)
        assert hub.gate.arrived.wait(WAIT), f"no {resource} create reached the gate: {hub.gate.seen}"
        hub.crash()
    finally:
        hub.gate.release(False)  # the hub is dead: the held write never happens
    hub.gate.open()
    record = open_record_in_state(hub, user)
    homes = {c for c in claims(hub) if c.startswith(f"home-local-{person}")}
    assert len(homes) == (1 if resource == "pods" else 0), claims(hub)  # between: the PVC was made, the pod not
    assert not pods(hub, user)
    hub.start()
    assert_gone(hub, api, user, record)


def scheduler(hub):
    return next(c for c in hub.cluster.plane.components if c.name == "kube-scheduler").proc


def test_killed_while_the_pod_is_pending_the_restarted_hub_adopts_it(hub):
    user = "local:kim"
    sched = scheduler(hub)
    os.kill(sched.pid, signal.SIGSTOP)  # the pod stays Pending: nothing places it
    try:
        client, api = start(hub, "kim")
        wait_for(lambda: pods(hub, user), f"the pod of {user} created", WAIT)
        (pod,) = pods(hub, user)
        assert pod["status"].get("phase") == "Pending" and not pod["spec"].get("nodeName"), pod["status"]
        hub.crash()
        record = open_record_in_state(hub, user)
        hub.start()
    finally:
        os.kill(sched.pid, signal.SIGCONT)
    server = wait_for(lambda: (s := api.get(f"/users/{user}").json()["servers"].get("")) and s.get("ready") and s,
                      f"the restarted hub to track the server of {user}", WAIT)
    assert server["pending"] is None, server
    (pod,) = pods(hub, user)
    assert pod["status"]["phase"] == "Running" and pod["metadata"]["name"] == persisted_state(hub, user)["pod_name"]
    kept = usage_record(hub, user)
    assert kept["id"] == record["id"] and kept["ended"] is None and kept["end_reason"] is None, kept
    assert quota_used(hub) == 1

    # Tracked for real: a stop through the REST API ends pod, record and quota hold.
    assert api.delete(f"/users/{user}/server").status_code in (202, 204)
    wait_for(lambda: not pods(hub, user), f"the pod of {user} deleted", WAIT)
    wait_for(lambda: not api.get(f"/users/{user}").json()["servers"], f"the hub to forget the server of {user}", WAIT)
    assert usage_record(hub, user)["end_reason"] == "stopped"
    assert quota_used(hub) == 0
    client.close()


def test_a_pod_whose_server_the_database_forgot_is_deleted_at_hub_start(hub):
    """An older backup of the database is restored while a server runs: the restarted hub has no row naming the
    pod, which would otherwise run outside quota, budget and deadline."""
    user = "local:lee"
    backup = hub.state / "before-lee.sqlite"
    with closing(database(hub)) as con, closing(sqlite3.connect(backup)) as out:
        con.backup(out)
    client, _ = start(hub, "lee")
    assert spawn_outcome(hub, client, user, timeout=WAIT).get("ready")
    (pod,) = pods(hub, user)
    hub.stop_hub()  # the pod keeps running (an upgrade does the same)
    assert pods(hub, user)
    with closing(sqlite3.connect(backup)) as old, closing(database(hub)) as con:
        old.backup(con)
    hub.start()
    wait_for(lambda: not pods(hub, user), f"the restarted hub to delete the pod of {user}", WAIT)
    assert f"Pod {hub.namespace}/{pod['metadata']['name']} belongs to no server of this hub" in hub.log()
    assert quota_used(hub) == 0
