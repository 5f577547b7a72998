"""The server list of the home and launch pages (issue 17): what a row says, and that the hub wires it in."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hubhelpers import VALUES, configured
from teamhub.catalog.loader import load_or_raise
from teamhub.hub import launchpage, serverlist, stopandstart

T0 = 1_000_000


@pytest.fixture(scope="module")
def catalog():
    return load_or_raise([VALUES]).catalog


def spawner(name="", info=None, pending=None, ready=True):
    user = SimpleNamespace(server_url=lambda n: f"/user/local:alice/{n}")
    return SimpleNamespace(name=name, teamhub_info=info, pending=pending, ready=ready, user=user)


def test_time_left_counts_down_to_the_deadline():
    assert serverlist.time_left({"deadline": T0 + 5400}, at=T0) == "1 h 30 min left (ends 1970-01-12T15:16:40Z)"
    assert serverlist.time_left({"deadline": T0 + 7200}, at=T0).startswith("2 h left")
    assert serverlist.time_left({"deadline": T0 + 30}, at=T0).startswith("1 min left")  # never "0 min"
    assert serverlist.time_left({"deadline": T0}, at=T0 + 1) == "ending now"
    assert serverlist.time_left({}) == "no limit"


def test_a_row_names_the_environment_and_accelerator_from_the_spawner_state(catalog):
    info = {"resource": "course-cv", "accelerator": "strix-halo", "deadline": T0 + 3600}
    row = serverlist.row(catalog, spawner("gpu", info), at=T0)
    assert row == {"name": "gpu", "label": "gpu", "resource": "Computer Vision course", "accelerator": "AMD Radeon 8060S",
                   "time_left": "1 h left (ends 1970-01-12T14:46:40Z)", "stoppable": True, "ready": True,
                   "url": "/user/local:alice/gpu"}
    cpu = serverlist.row(catalog, spawner("", {"resource": "cpu-large", "deadline": T0 + 60}), at=T0)
    assert (cpu["label"], cpu["resource"], cpu["accelerator"]) == ("Default server", "Python (8 CPUs)", "none")


def test_a_row_while_starting_or_stopping(catalog):
    info = {"resource": "cpu-large", "deadline": T0 + 60}
    assert serverlist.row(catalog, spawner(info=None, pending="spawn", ready=False), at=T0)["time_left"] == "starting"
    stopping = serverlist.row(catalog, spawner(info=info, pending="stop"), at=T0)
    assert stopping["time_left"] == "stopping" and not stopping["stoppable"]  # JupyterHub refuses a second stop
    # A resource gone from the catalog since the start (values changed): its key, not an error.
    assert serverlist.row(catalog, spawner(info={"resource": "retired"}), at=T0)["resource"] == "retired"


def test_the_hub_serves_the_list_and_the_stop_and_start():
    c = configured()
    assert c.JupyterHub.template_vars.get_value({})["teamhub_servers"] is serverlist.rows
    paths = c.JupyterHub.template_paths.get_value([])
    assert paths[0] == str(launchpage.TEMPLATES) and paths.count(paths[0]) == 1  # before JupyterHub's home.html and spawn.html
    routes = {route[0]: route[1] for route in c.JupyterHub.extra_handlers.get_value([])}
    assert routes["/launch/stop-and-start"] is stopandstart.StopAndStartHandler
    assert "/stop-server" not in routes  # Stop is JupyterHub's own API, not a handler of ours
    assert serverlist.rows(None) == []  # logged-out pages
