"""hub.baseUrl through the real configurable-http-proxy (issue 30): with `/jupyter/` the hub, its login, a person's
server and the idle culler all live under that path on a host shared with other sites, and nothing of the hub
answers outside it."""

from __future__ import annotations

import re

import httpx
import pytest
import yaml
from hubprocess import DEMO_VALUES, HubProcess, demo_passwords

BASE = "/jupyter/"
USER = "alice"
HUB_NAME = f"local:{USER}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    state = tmp_path_factory.mktemp("base-url")
    (state / "base-url.yaml").write_text(yaml.safe_dump({"hub": {"baseUrl": BASE}}))  # over the demo's values
    h = HubProcess([*DEMO_VALUES, state / "base-url.yaml"], state)
    h.start()  # polls <url>/hub/api/, which is under the base URL
    yield h
    h.stop()


def site(hub) -> str:
    return f"http://127.0.0.1:{hub.port}"


def test_the_hub_answers_under_the_base_url_only(hub):
    assert hub.url == f"{site(hub)}/jupyter"
    with httpx.Client(base_url=site(hub), timeout=30) as plain:
        assert plain.get("/jupyter/hub/health").status_code == 200
        api = plain.get("/jupyter/hub/api/")
        assert api.status_code == 200 and "version" in api.json()
        outside = plain.get("/hub/api/")
        assert outside.status_code != 200 or "version" not in outside.text, outside.text[:200]
        login = plain.get("/jupyter/hub/login")
        assert login.status_code == 200
        # every form and asset of the login page is under the base URL
        paths = re.findall(r'(?:action|href|src)="(/[^"]*)"', login.text)
        assert paths and all(p.startswith(BASE) for p in paths), [p for p in paths if not p.startswith(BASE)]


def test_a_person_logs_in_and_reaches_their_server_under_the_base_url(hub):
    with httpx.Client(base_url=site(hub), timeout=60, follow_redirects=False) as client:
        page = client.get("/jupyter/hub/login").text
        action = re.search(r'<form[^>]*class="[^"]*teamhub-local[^"]*"[^>]*action="([^"?]+)', page).group(1)
        assert action.startswith("/jupyter/hub/"), action
        r = client.post(action, data={"username": USER, "password": demo_passwords()[USER],
                                      "_xsrf": client.cookies.get("_xsrf")})
        assert r.status_code == 302 and r.headers["location"].startswith(BASE), (r.status_code, r.headers.get("location"))
        assert all("path=/jupyter/" in c.lower() for c in r.headers.get_list("set-cookie") if "jupyterhub" in c), \
            r.headers.get_list("set-cookie")
        token = client.post(f"/jupyter/hub/api/users/{HUB_NAME}/tokens", json={"note": "tests"},
                            headers={"X-XSRFToken": client.cookies.get("_xsrf")}).json()["token"]
    api = hub.api(token)
    try:
        r = api.post(f"/users/{HUB_NAME}/server", json={"resource": "cpu-small", "sessionMinutes": 30})
        assert r.status_code in (201, 202), r.text
        server = hub.wait_ready(api, HUB_NAME)
        assert server["url"].startswith("/jupyter/user/"), server["url"]
        status = httpx.get(f"{site(hub)}{server['url']}api/status", headers={"Authorization": f"token {token}"}, timeout=30)
        assert status.status_code == 200 and "started" in status.json(), status.text[:300]
        # the idle culler (a hub service) is handed the hub's API under the base URL
        hub.track()
        cullers = [p.environ().get("JUPYTERHUB_API_URL", "") for p in hub._tracked
                   if any("jupyterhub_idle_culler" in part for part in p.cmdline())]
        assert cullers and all(url.endswith("/jupyter/hub/api") for url in cullers), cullers
    finally:
        api.delete(f"/users/{HUB_NAME}/server")
