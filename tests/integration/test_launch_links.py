"""Launch links and named servers (issue 17) against the real hub, proxy and JupyterLab with nbgitpuller,
pulling from a git repository served over loopback (tests/gitserve.py)."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from gitserve import serving
from hubprocess import edited_hub

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends following a link or redirect of the hub's own pages
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("git"), {"course": {"week3/lab.ipynb": NOTEBOOK, "README.md": "Week 3"}}) as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory, git):
    def edit(values):
        values["launchLinks"] = {"allowedRepos": [f"{git.url}/"]}
        values["sessions"]["namedServers"] = {"enabled": True, "maxPerPerson": 2}
        values["catalog"]["teams"]["cv-course"]["quota"] = {"maxServers": 2, "maxGpus": 8}

    with edited_hub(tmp_path_factory.mktemp("hub"), edit) as h:
        yield h


def link(**fields) -> str:
    return "/hub/launch?" + urlencode(fields)


def servers(api, user="local:alice") -> dict:
    return api.get(f"/users/{user}").json().get("servers", {})


def admin_state(hub, passwords) -> dict:
    """Alice's servers with their state (her own token may not read state: an admin's may)."""
    ada = hub.login("ada", passwords["ada"])
    return hub.api(hub.token(ada, "local:ada")).get("/users/local:alice").json()["servers"]


def wait_stopped(api, name="", user="local:alice", timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while name in servers(api, user) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert name not in servers(api, user)


def test_a_logged_out_link_goes_through_login_and_keeps_the_link(hub, git):
    target = link(resource="cpu-large", repo=f"{git.url}/course.git", open="week3/lab.ipynb")
    r = httpx.get(hub.url + target, follow_redirects=False)
    assert r.status_code == 302 and "/hub/login" in r.headers["location"]
    assert "launch" in parse_qs(urlsplit(r.headers["location"]).query)["next"][0]


@pytest.mark.parametrize("fields, status, words", [
    ({"resource": "course-nlp"}, 403, "do not include the environment 'NLP course'"),  # another team's resource
    ({"resource": "cpu-large", "repo": "http://127.0.0.1:1/evil/course.git"}, 403, "not on this hub's list of allowed repositories"),
    ({"resource": "cpu-large", "sessionMinutes": "600"}, 400, "at most 240 minutes; you asked for 600"),
    ({"resource": "cpu-large", "repo": "GIT/course.git", "open": "../../.ssh/id_rsa"}, 400, "leaves the repository"),
])
def test_forged_links_are_refused_with_sentences_and_start_nothing(hub, git, alice, alice_api, fields, status, words):
    fields = {k: v.replace("GIT", git.url) for k, v in fields.items()}
    r = alice.get(link(**fields, autostart="1"))
    assert r.status_code == status, r.text[:500]
    assert words in html.unescape(r.text)
    assert 'type="hidden" name="repo"' not in r.text  # nothing of a refused link is carried into the form
    assert "" not in servers(alice_api)


def test_a_forged_form_with_a_repository_off_the_list_is_refused_at_start(hub, alice, alice_api):
    fields = {"resource": "cpu-large", "sessionMinutes": "60", "repo": "https://elsewhere.invalid/x/course.git"}
    r = hub.spawn_form(alice, fields)
    assert r.status_code == 403 and "not on this hub's list of allowed repositories" in html.unescape(r.text)
    assert "" not in servers(alice_api)


def test_a_link_ends_in_jupyterlab_with_the_repository_and_the_notebook_open(hub, git, alice, alice_api):
    target = link(resource="cpu-large", sessionMinutes="90", repo=f"{git.url}/course.git", branch="main", open="week3/lab.ipynb")
    page = alice.get(target)
    assert page.status_code == 200, page.text[:500]
    assert re.search(r'value="cpu-large"[^>]* checked', page.text)
    assert re.search(r'<option value="90" selected', page.text)
    assert f'name="repo" value="{git.url}/course.git"' in page.text and "week3/lab.ipynb" in page.text
    # Start: the form posts its fields (the preselection and the hidden repository) to the link's address.
    action = re.search(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    form = {"resource": "cpu-large", "sessionMinutes": "90", "repo": f"{git.url}/course.git", "branch": "main",
            "open": "week3/lab.ipynb"}
    r = alice.post(action, data=form)
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:500]
    server = hub.wait_ready(alice_api, "local:alice")
    base = hub.url + server["url"]
    auth = {"Authorization": alice_api.headers["Authorization"]}
    # The server's front door is nbgitpuller's page, which pulls and then opens the notebook in JupyterLab.
    front = httpx.get(base, headers=auth, follow_redirects=False, timeout=30)
    assert front.status_code == 302 and "git-pull?" in front.headers["location"]
    pull = parse_qs(urlsplit(front.headers["location"]).query)
    assert pull["urlpath"] == ["lab/tree/course/week3/lab.ipynb"] and pull["branch"] == ["main"]
    api_query = urlencode({k: v[0] for k, v in pull.items() if k in ("repo", "branch", "targetpath")})
    with httpx.stream("GET", f"{base}git-pull/api?{api_query}", headers=auth, timeout=60) as stream:
        events = "".join(stream.iter_text())
    assert '"phase": "finished"' in events, events[-1000:]
    home = next((hub.state / "homes").glob("*alice*"))
    assert (home / "course" / "week3" / "lab.ipynb").read_text() == NOTEBOOK
    opened = httpx.get(f"{base}{pull['urlpath'][0]}", headers=auth, timeout=30)
    assert opened.status_code == 200 and "JupyterLab" in opened.text
    contents = httpx.get(f"{base}api/contents/course/week3/lab.ipynb", headers=auth, timeout=30)
    assert contents.status_code == 200 and contents.json()["type"] == "notebook"


def test_a_link_for_another_environment_asks_and_changes_nothing(hub, alice, alice_api, passwords):
    before = servers(alice_api)[""]
    r = alice.get(link(resource="course-cv", accelerator="strix-halo", autostart="1"))
    assert r.status_code == 409
    text = html.unescape(r.text)
    assert "Your server runs <strong>Python (8 CPUs)</strong>" in text and "<strong>Computer Vision course on AMD Radeon 8060S" in text
    after = servers(alice_api)[""]
    assert after["started"] == before["started"] and after["ready"]
    # The other choice offered: the link in a named server beside the running one.
    beside = html.unescape(re.search(r'id="teamhub-open-named" href="([^"]+)"', r.text).group(1))
    r = alice.get(beside, headers=SAME_ORIGIN)  # a click on the hub's own page
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:500]
    hub.wait_ready(alice_api, "local:alice", server="course-cv")
    named = admin_state(hub, passwords)["course-cv"]["state"]["teamhub"]
    assert (named["resource"], named["accelerator"]) == ("course-cv", "strix-halo")
    assert servers(alice_api)[""]["started"] == before["started"]  # the default server untouched
    assert alice_api.request("DELETE", "/users/local:alice/servers/course-cv", json={"remove": True}).status_code in (202, 204)
    assert alice_api.delete("/users/local:alice/server").status_code in (202, 204)
    wait_stopped(alice_api)
    wait_stopped(alice_api, "course-cv")


def test_named_servers_count_against_the_team_quota_and_max_per_person(hub, alice_api):
    r = alice_api.post("/users/local:alice/servers/gpu", json={"resource": "course-cv", "accelerator": "strix-halo"})
    assert r.status_code in (201, 202), r.text
    r = alice_api.post("/users/local:alice/servers/cpu", json={"resource": "cpu-large"})
    assert r.status_code in (201, 202), r.text
    # A third named server: over maxPerPerson (JupyterHub's own limit).
    r = alice_api.post("/users/local:alice/servers/third", json={"resource": "cpu-small"})
    assert r.status_code == 400 and "maximum of 2 named servers" in r.text
    # The default server of a cv-course resource: the team's 2 servers are both taken by the named ones.
    r = alice_api.post("/users/local:alice/server", json={"resource": "cpu-large"})
    assert r.status_code == 403 and "already runs 2 of its 2 allowed servers" in r.text, r.text
    # A resource of another team (everyone: no quota) still starts as the default server.
    r = alice_api.post("/users/local:alice/server", json={"resource": "cpu-small"})
    assert r.status_code in (201, 202), r.text
    for name in ("gpu", "cpu", ""):
        url = f"/users/local:alice/servers/{name}" if name else "/users/local:alice/server"
        hub_ready = time.monotonic() + 90
        while not servers(alice_api).get(name, {}).get("ready") and time.monotonic() < hub_ready:
            time.sleep(0.5)
        assert alice_api.request("DELETE", url, json={"remove": True} if name else None).status_code in (202, 204)


def server_rows(page: str) -> dict:
    """The server list (teamhub/hub/templates/servers.html): server name -> [environment, accelerator, time left]."""
    rows = re.findall(r'<tr class="teamhub-server" data-server-name="([^"]*)">(.*?)</tr>', page, re.S)
    return {name: [html.unescape(re.sub(r"<[^>]+>", "", td)).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)][1:4]
            for name, body in rows}


def start_and_wait(hub, api, name, options) -> None:
    url = f"/users/local:alice/servers/{name}" if name else "/users/local:alice/server"
    assert api.post(url, json=options).status_code in (201, 202)
    hub.wait_ready(api, "local:alice", server=name)


def stop_as_the_page_does(client, page: str, name: str):
    """What the Stop button does (servers.html, JupyterHub's jhapi client): DELETE on JupyterHub's REST API with the
    page's xsrf token beside the login cookie."""
    assert re.search(rf'<button type="button" class="[^"]*teamhub-stop" data-server-name="{name}"', page)
    xsrf = re.search(r'xsrf_token: "([^"]+)"', page).group(1)
    path = f"/hub/api/users/local%3Aalice/servers/{name}" if name else "/hub/api/users/local%3Aalice/server"
    return client.delete(f"{path}?_xsrf={xsrf}")


def stop_and_start_form(page: str) -> tuple:
    """The 409 question's one-click form (launchhandler.stop_and_start_form): (action, hidden fields, button text)."""
    form = re.search(r'<form method="post" id="teamhub-stop-and-start" action="([^"]+)"(.*?)</form>', page, re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
    button = re.search(r"<button[^>]*>(.*?)</button>", form.group(2), re.S).group(1)
    return html.unescape(form.group(1)), {k: html.unescape(v) for k, v in fields.items()}, html.unescape(button)


def test_home_and_launch_pages_list_each_server_with_resource_accelerator_time_left_and_stop(hub, alice, alice_api):
    for name in ("", "gpu", "cpu"):  # the test before stops its servers
        wait_stopped(alice_api, name)
    start_and_wait(hub, alice_api, "", {"resource": "cpu-large", "sessionMinutes": "60"})
    start_and_wait(hub, alice_api, "gpu", {"resource": "course-cv", "accelerator": "strix-halo", "sessionMinutes": "120"})
    home = alice.get("/hub/home")
    assert home.status_code == 200
    rows = server_rows(home.text)
    assert list(rows) == ["", "gpu"], rows
    assert rows[""][:2] == ["Python (8 CPUs)", "none"] and re.fullmatch(r"(59 min|1 h) left \(ends .+Z\)", rows[""][2]), rows
    assert rows["gpu"][:2] == ["Computer Vision course", "AMD Radeon 8060S"], rows
    assert re.fullmatch(r"(1 h 59 min|2 h) left \(ends .+Z\)", rows["gpu"][2]), rows
    # Stop is JupyterHub's own API: without the page's xsrf token a cookie stops nothing.
    assert alice.delete("/hub/api/users/local%3Aalice/servers/gpu").status_code in (401, 403)
    assert "gpu" in servers(alice_api)
    r = stop_as_the_page_does(alice, home.text, "gpu")
    assert r.status_code in (202, 204), r.text
    wait_stopped(alice_api, "gpu")
    assert list(server_rows(alice.get("/hub/home").text)) == [""]
    # The launch page (here a named server's) lists the running default server with the same partial.
    page = alice.get(link(resource="cpu-small", server="second"))
    assert page.status_code == 200 and server_rows(page.text) == {"": rows[""][:2] + [server_rows(page.text)[""][2]]}
    assert stop_as_the_page_does(alice, page.text, "").status_code in (202, 204)
    wait_stopped(alice_api)


def test_stop_it_and_start_this_ends_in_the_links_environment(hub, alice, alice_api, passwords):
    start_and_wait(hub, alice_api, "", {"resource": "cpu-large", "sessionMinutes": "60"})
    before = servers(alice_api)[""]["started"]
    target = link(resource="course-cv", accelerator="strix-halo")
    question = alice.get(target)
    assert question.status_code == 409
    action, fields, button = stop_and_start_form(question.text)
    assert button == "Stop Python (8 CPUs) and start Computer Vision course on AMD Radeon 8060S"
    # Without the page's xsrf token nothing stops.
    assert alice.post(action, data={k: v for k, v in fields.items() if k != "_xsrf"}).status_code == 403
    # A form for what ran before (another tab started something since) stops nothing.
    stale = alice.post(action, data={**fields, "running_started": "2000-01-01T00:00:00"})
    assert stale.status_code == 409 and "nothing was stopped" in html.unescape(stale.text)
    assert servers(alice_api)[""]["started"] == before
    # The click: the server stops, then the browser goes to the link itself (autostart), whose GET checks and starts.
    r = alice.post(action, data=fields)
    assert r.status_code == 303, r.text[:500]
    assert r.headers["location"] == target + "&autostart=1"
    r = alice.get(r.headers["location"], headers=SAME_ORIGIN)  # the redirect of the hub page's own POST
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:500]
    hub.wait_ready(alice_api, "local:alice")
    state = admin_state(hub, passwords)[""]["state"]["teamhub"]
    assert (state["resource"], state["accelerator"]) == ("course-cv", "strix-halo")
    assert "stopping Python (8 CPUs) on request" in hub.log()
    assert alice_api.delete("/users/local:alice/server").status_code in (202, 204)
    wait_stopped(alice_api)


def test_stop_and_start_of_a_link_refused_now_stops_nothing(hub, alice, alice_api):
    start_and_wait(hub, alice_api, "", {"resource": "cpu-large", "sessionMinutes": "60"})
    before = servers(alice_api)[""]["started"]
    question = alice.get(link(resource="course-cv", accelerator="strix-halo"))
    action, fields, _ = stop_and_start_form(question.text)
    # The same click with a link changed to another team's resource: the start check's sentence, not a 500.
    forged = action.replace("course-cv", "course-nlp")
    r = alice.post(forged, data=fields)
    assert r.status_code == 403 and "do not include the environment 'NLP course'" in html.unescape(r.text), r.text[:500]
    assert servers(alice_api)[""]["started"] == before and servers(alice_api)[""]["ready"]
    assert alice_api.delete("/users/local:alice/server").status_code in (202, 204)
    wait_stopped(alice_api)
