"""The real hub with configurable-http-proxy in local mode: launch page, enforcement, starting, restart."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from hubprocess import offered_resources

EXPECTED = {
    "ada": {"cpu-small", "cpu-large", "course-cv", "course-nlp", "research-gpu"},  # admin: everything
    "alice": {"cpu-small", "course-cv", "cpu-large"},
    "bob": {"cpu-small", "course-nlp", "cpu-large"},
    "carol": {"cpu-small"},
}


@pytest.fixture(scope="module")
def clients(hub, passwords):
    return {name: hub.login(name, passwords[name]) for name in EXPECTED}


@pytest.fixture(scope="module")
def admin_api(hub, clients):
    return hub.api(hub.token(clients["ada"], "local:ada"))


def test_wrong_password_is_refused(hub):
    client = httpx.Client(base_url=hub.url)
    client.get("/hub/login")
    r = client.post("/hub/login", data={"username": "alice", "password": "nope", "_xsrf": client.cookies.get("_xsrf")})
    assert r.status_code == 403


def test_the_running_hub_froze_its_start_up_objects(hub):
    # Regression (issue 12): full garbage collections traced every start-up object, pausing all requests.
    assert re.search(r"teamhub: \d+ start-up objects frozen out of garbage collection", hub.log())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_launch_page_offers_exactly_the_teams_resources(hub, clients, name):
    r = clients[name].get("/hub/spawn")
    assert r.status_code == 200
    assert offered_resources(r.text) == EXPECTED[name]
    assert "not enforced" in r.text  # local mode says so
    assert "https://" not in r.text.split('id="teamhub-launch"')[1]  # no CDN assets in our part


FORGED = [
    ({"resource": "course-nlp", "sessionMinutes": "30"}, 403, "do not include"),
    ({"resource": "research-gpu"}, 403, "do not include"),
    ({"resource": "no-such-thing"}, 400, "no environment called"),
    ({"resource": "course-cv"}, 400, "Choose an accelerator"),
    ({"resource": "course-cv", "accelerator": "nvidia-l40s"}, 400, "does not offer"),
    ({"resource": "cpu-small", "accelerator": "strix-halo"}, 400, "does not take an accelerator"),
    ({"resource": "cpu-small", "sessionMinutes": "9999"}, 400, "at most 480 minutes"),
    ({"resource": "cpu-large", "sessionMinutes": "300"}, 400, "at most 240 minutes"),
    ({"resource": "cpu-small", "sessionMinutes": "abc"}, 400, "whole number"),
    # str.isdigit() digits that are not ASCII: Arabic-Indic 60 started a server, superscript two and
    # 4,300+ digits raised a bare ValueError ("Invalid user options" and a traceback).
    ({"resource": "cpu-small", "sessionMinutes": "\u0666\u0660"}, 400, "whole number"),
    ({"resource": "cpu-small", "sessionMinutes": "\u00b2"}, 400, "whole number"),
    ({"resource": "cpu-small", "sessionMinutes": "9" * 4400}, 400, "whole number"),
    ({"resource": "cpu-small", "image": "evil/miner:latest"}, 400, "Unknown option"),
    ({}, 400, "Choose an environment"),
]


def _no_server(admin_api, username):
    servers = admin_api.get(f"/users/{username}").json()["servers"]
    assert servers == {}, servers


@pytest.mark.parametrize(("fields", "status", "words"), FORGED)
def test_forged_form_posts_are_refused(hub, clients, admin_api, fields, status, words):
    r = hub.spawn_form(clients["alice"], fields)
    assert r.status_code == status, r.text[:500]
    assert words in r.text
    _no_server(admin_api, "local:alice")


@pytest.mark.parametrize(("fields", "status", "words"), FORGED + [
    ({"resource": ["cpu-small", "course-cv"]}, 400, "by its name"),
    ({"resource": "cpu-small", "sessionMinutes": True}, 400, "whole number"),
    ({"resource": "cpu-small", "sessionMinutes": 0}, 400, "at least 1"),
])
def test_forged_rest_starts_are_refused(hub, clients, admin_api, fields, status, words):
    api = hub.api(hub.token(clients["alice"], "local:alice"))
    r = api.post("/users/local:alice/server", json=fields)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    _no_server(admin_api, "local:alice")


# JupyterHub's own lines about a SpawnException (teamhub's refusals, issue 25): fixed texts, or its reason.
SPAWN_EXCEPTION_LINES = re.compile(r"Exception applying user_options for |Failed to spawn single-user server with form|"
                                   r"SpawnException\(reason=refused-")


def test_refused_starts_are_one_info_line_each_without_traceback(hub, clients):
    """5,000 refused starts once logged 3,897 tracebacks: a refusal is the person's mistake, not a hub fault. It is
    JupyterHub's SpawnException with a reason: JupyterHub's own lines say so, none with a traceback."""
    before = len(hub.log())
    api = hub.api(hub.token(clients["carol"], "local:carol"))
    refusals = [("form", {"resource": "course-cv"}), ("form", {"resource": "cpu-small", "sessionMinutes": "\u00b2"}),
                ("rest", {"resource": "research-gpu"}), ("rest", {"resource": "cpu-small", "sessionMinutes": "9" * 4400})]
    for how, fields in refusals:
        r = hub.spawn_form(clients["carol"], fields) if how == "form" else api.post("/users/local:carol/server", json=fields)
        assert r.status_code in (400, 403)
    log = hub.log()[before:]
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("[E ")]
    assert errors and not [line for line in errors if not SPAWN_EXCEPTION_LINES.search(line)], log[-3000:]
    lines = [line for line in log.splitlines() if "Refused start" in line]
    assert len(lines) == len(refusals), log[-3000:]
    for line, (_, fields) in zip(lines, refusals, strict=True):
        assert line.startswith("[I ") and "local:carol" in line and f'"resource": "{fields["resource"]}"' in line
        assert len(line) < 600
    # a reason is said by teamhub's line and JupyterHub's account of the refusal (its SpawnException, or the 4xx
    # answer as a warning), and by no other line
    for reason in ("do not include", "whole number of minutes"):
        said = [line for line in log.splitlines() if reason in line]
        assert sum("Refused start" in line for line in said) == 2  # carol may launch neither; two bad lengths
        assert all("Refused start" in line or "SpawnException(reason=refused-" in line or re.match(r"\[W .* 4\d\d ", line)
                   for line in said), said


def test_start_reach_jupyterlab_and_keep_the_deadline_across_a_hub_restart(hub, clients, admin_api):
    api = hub.api(hub.token(clients["carol"], "local:carol"))
    before = time.time()
    r = api.post("/users/local:carol/server", json={"resource": "cpu-small", "sessionMinutes": 30})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready(api, "local:carol")
    base = hub.url + server["url"]  # /user/local%3Acarol/
    state = admin_api.get("/users/local:carol", params={"include_stopped_servers": "0"}).json()["servers"][""]["state"]
    info = state["teamhub"]
    assert info["resource"] == "cpu-small" and info["minutes"] == 30
    assert before + 30 * 60 - 5 <= info["deadline"] <= time.time() + 30 * 60 + 5

    auth = {"Authorization": api.headers["Authorization"]}
    lab = httpx.get(f"{base}api/status", headers=auth, timeout=30)
    assert lab.status_code == 200, lab.text[:300]
    page = httpx.get(f"{base}lab", headers=auth, timeout=30)
    assert page.status_code == 200 and "JupyterLab" in page.text

    hub.crash()
    hub.start()
    state_after = hub.api(admin_api.headers["Authorization"][6:]).get("/users/local:carol").json()["servers"][""]["state"]
    assert state_after["teamhub"]["deadline"] == info["deadline"]
    lab = httpx.get(f"{base}api/status", headers=auth, timeout=30)
    assert lab.status_code == 200

    r = api.delete("/users/local:carol/server")
    assert r.status_code in (202, 204)


def test_allowed_form_start_then_stop(hub, clients, admin_api):
    client = clients["bob"]
    r = hub.spawn_form(client, {"resource": "cpu-large", "sessionMinutes": "120"})
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:500]
    api = hub.api(hub.token(client, "local:bob"))
    hub.wait_ready(api, "local:bob")
    info = admin_api.get("/users/local:bob").json()["servers"][""]["state"]["teamhub"]
    assert (info["resource"], info["minutes"], info["team"]) == ("cpu-large", 120, "nlp-course")
    page = client.get("/hub/spawn")  # the launch page of a running server redirects to it
    assert page.status_code in (200, 302)
    assert api.delete("/users/local:bob/server").status_code in (202, 204)
