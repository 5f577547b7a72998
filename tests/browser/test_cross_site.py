"""A page on another site, in a real browser, against a logged-in person (issue 23, findings 1 and 4).

The hostile page is served from a second origin on loopback (127.0.0.2: another site, not only another port),
the hub from 127.0.0.1. Before: a top-level navigation to an autostart link started the person's server and,
through nbgitpuller's unescaped status page, ran the page's script on the hub's origin; views of
`server=NAME` used up maxPerPerson. Now every one of those shows a page and starts or stores nothing."""

from __future__ import annotations

import html
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from browserkit import browser_hub, http_login, password_of
from gitserve import serving

HOSTILE_HOST = "127.0.0.2"
USER = "local:alice"


class Hostile:
    """Pages of the other site: path -> HTML."""

    def __init__(self):
        pages = self.pages = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOSTILE_HOST, 0), Handler)
        self.url = f"http://{HOSTILE_HOST}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, name: str, body: str) -> str:
        self.pages[f"/{name}"] = f"<!doctype html><html><body>{body}</body></html>"
        return f"{self.url}/{name}"


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("git"), {"course": {"README.md": "Week 3"}}) as server:
        yield server


@pytest.fixture(scope="module")
def hostile():
    h = Hostile()
    yield h
    h.server.shutdown()


@pytest.fixture(scope="module")
def hub(git, tmp_path_factory):
    def edit(values):
        values["launchLinks"] = {"allowedRepos": [git.url]}
        values["sessions"]["namedServers"] = {"enabled": True, "maxPerPerson": 2}

    with browser_hub(tmp_path_factory.mktemp("crosssitehub"), edit=edit) as h:
        yield h


@pytest.fixture(scope="module")
def api(hub):
    client = http_login(hub, "alice")
    return hub.api(hub.token(client, USER))


@pytest.fixture
def alice(hub, page):
    """The browser page, logged in as alice on the hub."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", password_of("alice"))
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/(home|spawn)"))
    return page


def servers(api) -> dict:
    return api.get(f"/users/{USER}").json().get("servers", {})


def test_a_cross_site_navigation_to_an_autostart_link_shows_one_start(hub, hostile, alice, api):
    link = f"{hub.url}/hub/launch?" + urlencode({"resource": "cpu-large", "sessionMinutes": "90", "autostart": "1"})
    alice.goto(hostile.page("navigate", f"<script>location = {link!r};</script>"))
    alice.wait_for_url(re.compile(r"/hub/launch\?"))
    alice.locator("#spawn_form").wait_for()
    assert alice.is_checked("#res-cpu-large")
    assert alice.get_by_role("button", name="Start").count() == 1
    assert servers(api) == {}
    assert "from another site: showing the page instead of autostart" in hub.log()


def test_a_cross_site_get_form_to_jupyterhubs_spawn_starts_nothing(hub, hostile, alice, api):
    form = (f'<form id="f" method="get" action="{hub.url}/hub/spawn"><input name="resource" value="cpu-large">'
            '<input name="sessionMinutes" value="30"></form><script>document.getElementById("f").submit();</script>')
    alice.goto(hostile.page("getform", form))
    alice.wait_for_url(re.compile(r"/hub/spawn\?"))
    alice.locator("#spawn_form").wait_for()
    assert servers(api) == {}


def test_views_of_named_servers_from_another_site_store_nothing(hub, hostile, alice, api):
    names = ["cv", "gpu", "third"]
    subrequests = "".join(f'<img src="{hub.url}/hub/launch?server={n}&resource=cpu-large&autostart=1">'
                          f'<iframe src="{hub.url}/hub/spawn/{USER}/{n}x"></iframe>' for n in names)
    subrequests += f'<script>fetch("{hub.url}/hub/spawn?resource=cpu-large", {{mode: "no-cors", credentials: "include"}})' \
                   '.finally(() => document.title = "sent");</script>'
    alice.goto(hostile.page("subrequests", subrequests))
    alice.wait_for_function("document.title === 'sent'")
    for n in names:  # and top-level views, which carry the cookie (SameSite=Lax allows navigations)
        alice.goto(hostile.page(f"view-{n}", f"<script>location = '{hub.url}/hub/launch?server={n}&resource=cpu-large';</script>"))
        alice.wait_for_url(re.compile(rf"server={n}"))
        alice.locator("#spawn_form").wait_for()
    assert servers(api) == {}
    # The person's own start of a named server is not refused for views that used up maxPerPerson.
    alice.get_by_role("button", name="Start").click()
    alice.wait_for_url(re.compile(r"/(spawn-pending|user)/"), timeout=60_000)
    deadline = time.monotonic() + 90
    while not servers(api).get("third", {}).get("ready") and time.monotonic() < deadline:
        alice.wait_for_timeout(500)
    assert servers(api)["third"]["ready"]
    api.request("DELETE", f"/users/{USER}/servers/third", json={"remove": True})


def test_a_cross_site_pull_page_runs_no_script(hub, git, hostile, alice, api):
    """Finding 1 as found: the hostile page sends the person to their running server's nbgitpuller page with
    markup in urlpath (through /hub/user-redirect). The pull guard refuses it; no script runs, nothing is pulled."""
    r = api.post(f"/users/{USER}/server", json={"resource": "cpu-large", "sessionMinutes": "30"})
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 90
    while not servers(api).get("", {}).get("ready") and time.monotonic() < deadline:
        alice.wait_for_timeout(500)
    dialogs = []
    alice.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    markup = "<svg/onload=alert(document.domain)>"
    target = f"{hub.url}/hub/user-redirect/git-pull?" + urlencode({"repo": f"{git.url}/course.git", "urlpath": markup})
    alice.goto(hostile.page("xss", f"<script>location = {target!r};</script>"))
    alice.wait_for_url(re.compile(r"/git-pull\?"))
    alice.wait_for_load_state("load")
    assert dialogs == [] and alice.locator("svg[onload]").count() == 0
    assert "not a relative path of plain names" in html.unescape(alice.content())
    other = f"{hub.url}/hub/user-redirect/git-pull?" + urlencode({"repo": "http://127.0.0.1:1/evil/x.git", "targetpath": "evil"})
    alice.goto(hostile.page("pull-other", f"<script>location = {other!r};</script>"))
    alice.wait_for_url(re.compile(r"/git-pull\?"))
    assert "not on this hub's list of allowed repositories" in alice.content()
    home = next((hub.state / "homes").glob("*alice*"))
    assert not (home / "evil").exists() and not (home / "course").exists()
    api.delete(f"/users/{USER}/server")
