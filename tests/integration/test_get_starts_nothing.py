"""No state change on GET (issue 23, finding 4), through the real proxy and hub: what another site can make a
logged-in browser send (a navigation, an auto-submitted GET form) shows pages and starts or stores nothing;
autostart acts only for the hub's own pages (Sec-Fetch-Site: same-origin); the cookies are SameSite=Lax.
The browser tier (tests/browser/test_cross_site.py) sends the same requests from a page of another origin."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import httpx
import pytest
from gitserve import serving
from hubprocess import edited_hub
from support import wait_for

CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
USER = "local:alice"


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("git"), {"course": {"README.md": "Week 3"}}) as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory, git):
    def edit(values):
        values["launchLinks"] = {"allowedRepos": [git.url]}
        values["sessions"]["namedServers"] = {"enabled": True, "maxPerPerson": 2}

    with edited_hub(tmp_path_factory.mktemp("hub"), edit) as h:
        yield h


@pytest.fixture(scope="module")
def api(alice_api):
    return alice_api


def servers(api) -> dict:
    return api.get(f"/users/{USER}").json().get("servers", {})


def launch(**fields) -> str:
    return "/hub/launch?" + urlencode(fields)


def stop(api, name=""):
    url = f"/users/{USER}/servers/{name}" if name else f"/users/{USER}/server"
    api.request("DELETE", url, json={"remove": True} if name else None)
    wait_for(lambda: name not in servers(api), f"server {name!r} gone", timeout=90)


def test_hub_cookies_are_samesite_lax(hub, passwords):
    client = httpx.Client(base_url=hub.url, follow_redirects=False)
    client.get("/hub/login")
    page = client.get("/hub/login").text
    action = re.search(r'<form[^>]*class="[^"]*teamhub-local[^"]*"[^>]*action="([^"?]+)', page).group(1)
    r = client.post(action, data={"username": "alice", "password": passwords["alice"], "_xsrf": client.cookies.get("_xsrf")})
    assert r.status_code == 302
    cookies = r.headers.get_list("set-cookie")
    login = [c for c in cookies if c.startswith(("jupyterhub-hub-login=", "jupyterhub-session-id="))]
    assert len(login) == 2 and all("samesite=lax" in c.lower() for c in login), cookies
    xsrf = httpx.get(hub.url + "/hub/login").headers.get_list("set-cookie")
    assert xsrf and all("samesite=lax" in c.lower() for c in xsrf if c.startswith("_xsrf="))


@pytest.mark.parametrize("headers", [CROSS_SITE, {}], ids=["cross-site", "no-fetch-metadata"])
def test_a_cross_site_autostart_link_shows_the_filled_page_with_one_start(hub, alice, api, headers):
    r = alice.get(launch(resource="cpu-large", sessionMinutes="90", autostart="1"), headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert re.search(r'value="cpu-large"[^>]* checked', r.text) and re.search(r'<option value="90" selected', r.text)
    form = re.search(r'<form[^>]*id="spawn_form"[^>]*>', r.text).group(0)
    assert 'method="post"' in form.lower() and "_xsrf=" in form
    assert "" not in servers(api)  # nothing started
    assert "from another site: showing the page instead of autostart" in hub.log()


def test_viewing_a_link_for_a_named_server_stores_nothing(hub, alice, api):
    for _ in range(3):  # more views than maxPerPerson (2)
        r = alice.get(launch(resource="cpu-small", server="cv", autostart="1"), headers=CROSS_SITE)
        assert r.status_code == 200, r.text[:300]
        r = alice.get(launch(resource="cpu-small", server="other"))
        assert r.status_code == 200
    assert servers(api) == {}
    # The person's own start of a named server still works: nothing was used up by the views.
    r = alice.post(re.search(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', r.text).group(1).replace("&amp;", "&"),
                   data={"resource": "cpu-small", "sessionMinutes": "30"})
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:300]
    wait_for(lambda: servers(api).get("other", {}).get("ready"), "the named server", timeout=90)
    stop(api, "other")


@pytest.mark.parametrize("path", ["/hub/spawn?resource=cpu-small", "/hub/spawn?opt-resource=cpu-small&opt-sessionMinutes=30",
                                  f"/hub/spawn/{USER}?resource=cpu-small", f"/hub/spawn/{USER}/newname",
                                  f"/hub/spawn/{USER}/newname?resource=cpu-small"])
def test_jupyterhubs_own_get_start_shows_the_page_and_starts_nothing(hub, alice, api, path):
    r = alice.get(path, headers=CROSS_SITE)
    assert r.status_code == 200, r.text[:300]
    assert 'id="spawn_form"' in r.text
    assert servers(api) == {}  # no server started, no named server stored


@pytest.mark.parametrize("repo", ["GIT/x/../course.git", "GIT/x/%2e%2e/course.git", "GIT/x%2f..%2fcourse.git",
                                  "GIT/x/\uff0e\uff0e/course.git"])
def test_a_way_out_of_the_allow_list_is_refused_by_link_form_and_rest_api(hub, git, alice, api, repo):
    """Finding 2 through the three ways in: the same grammar, the same sentence, nothing started."""
    repo = repo.replace("GIT", git.url)
    sentence = re.compile(r"has '[^']*' in its path|holds spaces, control or non-ASCII characters")
    r = alice.get(launch(resource="cpu-small", repo=repo, autostart="1"), headers=SAME_ORIGIN)
    assert r.status_code == 400 and sentence.search(html.unescape(r.text)), r.text[:300]
    r = hub.spawn_form(alice, {"resource": "cpu-small", "sessionMinutes": "30", "repo": repo})
    assert r.status_code == 400 and sentence.search(html.unescape(r.text)), r.text[:300]
    r = api.post(f"/users/{USER}/server", json={"resource": "cpu-small", "repo": repo})
    assert r.status_code == 400 and sentence.search(r.json()["message"]), r.text
    assert servers(api) == {}


def test_a_same_origin_autostart_still_starts(hub, alice, api):
    r = alice.get(launch(resource="cpu-small", sessionMinutes="30", autostart="1"), headers=SAME_ORIGIN)
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:300]
    wait_for(lambda: servers(api).get("", {}).get("ready"), "the default server", timeout=90)


def test_user_server_cookies_are_samesite_lax(hub, alice, api):
    """JupyterHub hands its cookie options to the servers (JUPYTERHUB_COOKIE_OPTIONS): the server's own login
    cookie, set at the end of its OAuth sign-in through the hub, is SameSite=Lax too."""
    r = alice.get(servers(api)[""]["url"] + "lab", follow_redirects=True)
    assert r.status_code == 200 and "JupyterLab" in r.text, r.text[:300]
    cookies = [c for resp in [*r.history, r] for c in resp.headers.get_list("set-cookie")
               if c.startswith("jupyterhub-user-") and '=""' not in c]  # not the clearing of the OAuth state
    assert any(c.startswith("jupyterhub-user-local%3Aalice=") for c in cookies), cookies  # the server's login cookie
    assert all("samesite=lax" in c.lower() for c in cookies), cookies


def test_the_running_servers_pull_obeys_the_allow_list_through_the_proxy(hub, git, alice, api):
    """Findings 1 and 3 as found: /hub/user-redirect/git-pull reaches the person's running server's nbgitpuller.
    The pull guard in the server refuses other repositories and markup, whoever links there."""
    def via_redirect(path, **query):
        return alice.get(f"/hub/user-redirect/{path}?{urlencode(query)}", follow_redirects=True)

    r = via_redirect("git-pull", repo=f"{git.url}/course.git", urlpath="<svg/onload=alert(document.domain)>")
    assert r.status_code == 400 and "<svg" not in r.text
    r = via_redirect("git-pull/api", repo="http://127.0.0.1:1/evil/course.git", targetpath="evil")
    assert r.status_code == 403
    r = via_redirect("git-pull/api", repo=f"{git.url}/x/../course.git", targetpath="evil")
    assert r.status_code == 400
    homes = list((hub.state / "homes").glob("*alice*"))
    assert homes and not (homes[0] / "evil").exists()
    r = via_redirect("git-pull/api", repo=f"{git.url}/course.git", targetpath="course")
    assert r.status_code == 200 and '"phase": "finished"' in r.text
    assert (homes[0] / "course" / "README.md").read_text() == "Week 3"


def test_a_cross_site_pull_link_into_a_running_server_asks_first(hub, git, alice, api):
    """The same environment already runs: the hub's link would send the browser straight into nbgitpuller;
    from another site it shows the choice (pull, or go to the server) and sends it nowhere."""
    target = launch(resource="cpu-small", repo=f"{git.url}/course.git")
    r = alice.get(target, headers=CROSS_SITE)
    assert r.status_code == 200 and 'id="teamhub-pull-running"' in r.text, r.text[:500]
    pull = html.unescape(re.search(r'id="teamhub-pull-open" href="([^"]+)"', r.text).group(1))
    assert "/git-pull?" in pull and "course.git" in pull
    r = alice.get(target, headers=SAME_ORIGIN)
    assert r.status_code == 302 and "/git-pull?" in r.headers["location"]
    stop(api)
