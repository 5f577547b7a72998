"""Per-user origins through the real configurable-http-proxy (issue 23): with `hub.subdomainHost` the hub
answers on hub.localhost and a person's server only on its own host, <name>.hub.localhost, and neither
origin's cookies reach the other.

Names under .localhost are loopback (RFC 6761; Chromium resolves them itself). The client here does the
same (LoopbackNames) and keeps cookies like a browser: a cookie without a Domain attribute goes back only to
the host that set it (RFC 6265 host-only), which Python's cookie jar does only when told to be strict.
"""

from __future__ import annotations

import re
import urllib.request
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from hubprocess import HubProcess, demo_passwords, demo_values
from teamhub.cli.demo import free_port

USER = "alice"
HUB_NAME = f"local:{USER}"


class LoopbackNames(httpx.BaseTransport):
    """Connects every *.localhost name to 127.0.0.1; the request (URL, Host header, cookies) is unchanged."""

    def __init__(self):
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host.endswith(".localhost"):
            request = httpx.Request(request.method, request.url.copy_with(host="127.0.0.1"), headers=request.headers,
                                    stream=request.stream, extensions=request.extensions)
        return self.inner.handle_request(request)

    def close(self):
        self.inner.close()


class BrowserCookies:
    """A browser's cookie rules (RFC 6265): a cookie without a Domain attribute goes back only to the host that
    set it. httpx copies its cookie jar into a default (liberal) one for every request, which would send a
    host's cookies to its subdomains too; so cookies are kept here and applied by event hooks."""

    def __init__(self):
        self.jar = CookieJar(DefaultCookiePolicy(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain))

    def on_request(self, request: httpx.Request) -> None:
        wrapped = urllib.request.Request(str(request.url), method=request.method)
        self.jar.add_cookie_header(wrapped)
        request.headers.pop("cookie", None)
        if wrapped.has_header("Cookie"):
            request.headers["cookie"] = wrapped.get_header("Cookie")

    def on_response(self, response: httpx.Response) -> None:
        self.jar.extract_cookies(_Info(response), urllib.request.Request(str(response.request.url)))

    def get(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


class _Info:
    def __init__(self, response: httpx.Response):
        self.response = response

    def info(self):
        return self

    def get_all(self, name: str, default=None):
        return self.response.headers.get_list(name) or default


def browser(base_url: str) -> httpx.Client:
    cookies = BrowserCookies()
    client = httpx.Client(base_url=base_url, transport=LoopbackNames(), timeout=60, follow_redirects=False,
                          event_hooks={"request": [cookies.on_request], "response": [cookies.on_response]})
    client.browser_cookies = cookies
    return client


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    state = tmp_path_factory.mktemp("subdomains")
    port = free_port()
    values = demo_values()
    values.setdefault("hub", {})["subdomainHost"] = f"http://hub.localhost:{port}"
    (state / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    h = HubProcess(state / "values.yaml", state, port=port)
    h.hub_origin = f"http://hub.localhost:{port}"
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def session(hub):
    """alice logged in at the hub's origin, her server started and ready: (client, token, server's URL)."""
    client = browser(hub.hub_origin)
    page = client.get("/hub/login")
    assert page.status_code == 200
    action = re.search(r'<form[^>]*class="[^"]*teamhub-local[^"]*"[^>]*action="([^"?]+)', page.text)
    r = client.post(action.group(1) if action else "/hub/login",
                    data={"username": USER, "password": demo_passwords()[USER], "_xsrf": client.browser_cookies.get("_xsrf")})
    assert r.status_code == 302, r.text[:300]
    client.hub_login_cookies = set_cookies(r)
    token = hub.token(client, HUB_NAME)
    api = hub.api(token)
    r = api.post(f"/users/{HUB_NAME}/server", json={"resource": "cpu-small", "sessionMinutes": 30})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready(api, HUB_NAME)
    yield client, token, server["url"]
    api.delete(f"/users/{HUB_NAME}/server")


def test_the_server_has_its_own_host_and_the_proxy_routes_by_it(hub, session):
    _, token, url = session
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.port == hub.port
    assert parts.hostname.endswith(".hub.localhost") and parts.hostname != "hub.localhost", url
    hub.track()
    proxies = [p.cmdline() for p in hub._tracked if any("configurable-http-proxy" in part for part in p.cmdline())]
    assert proxies and all("--host-routing" in cmd for cmd in proxies), proxies  # JupyterHub started it so
    auth = {"Authorization": f"token {token}"}
    with httpx.Client(transport=LoopbackNames(), timeout=30) as plain:
        own = plain.get(f"{url}api/status", headers=auth)
        assert own.status_code == 200 and "started" in own.json(), own.text[:300]
        # The same path on the hub's origin never reaches the server: the hub answers and sends the browser on.
        on_hub = plain.get(f"{hub.hub_origin}{parts.path}api/status", headers=auth, follow_redirects=True)
        assert on_hub.history and all(urlsplit(str(r.url)).hostname == "hub.localhost" and "started" not in r.text
                                      for r in on_hub.history), [(str(r.url), r.status_code) for r in on_hub.history]
        # (the client drops the token on the way to another origin, as browsers do: the server then refuses)
        assert urlsplit(str(on_hub.url)).hostname == parts.hostname and on_hub.status_code == 403


def test_a_browser_reaches_jupyterlab_on_the_servers_origin_and_its_cookie_stays_there(hub, session):
    client, _, url = session
    server_host = urlsplit(url).hostname
    # The credentials are host-only (no Domain attribute). JupyterHub's session id, which signs nobody in (it ties
    # tokens to a login so that logging out revokes them), is deliberately shared with the subdomains.
    login = [c for c in client.hub_login_cookies if c.startswith("jupyterhub-hub-login=")]
    assert login and "domain=" not in login[0].lower(), client.hub_login_cookies
    lab = client.get(url, follow_redirects=True)  # the server sends the browser to the hub's OAuth and back
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.status_code, lab.text[:300])
    assert urlsplit(str(lab.url)).hostname == server_host
    hosts = [urlsplit(str(r.url)).hostname for r in lab.history]
    assert "hub.localhost" in hosts, hosts  # signed in through the hub's origin
    server_cookies = [c for r in lab.history + [lab] if urlsplit(str(r.url)).hostname == server_host for c in set_cookies(r)]
    names = {c.split("=", 1)[0] for c in server_cookies}
    user_cookie = next(n for n in names if n.startswith("jupyterhub-user-") and not n.endswith("-oauth-state"))
    assert not [c for c in server_cookies if c.startswith(user_cookie) and "domain=" in c.lower()], server_cookies
    assert {c.domain for c in client.browser_cookies.jar if c.name == user_cookie} == {server_host}

    on_hub = client.get("/hub/home")
    assert on_hub.status_code == 200  # still signed in at the hub: its own cookie went there
    sent = on_hub.request.headers.get("cookie", "")
    assert "jupyterhub-hub-login" in sent and user_cookie not in sent, sent
    again = client.get(url + "api/status")
    assert again.status_code == 200  # the server's own cookie authenticates at the server...
    assert "jupyterhub-hub-login" not in again.request.headers.get("cookie", "")  # ...without the hub's
    # The proxy sends every host's /hub/ to the hub, but from the server's origin the browser sends no hub
    # cookie: script served there cannot call the hub as alice.
    here = client.get(f"http://{server_host}:{hub.port}/hub/api/user")
    assert here.status_code == 403 and "jupyterhub-hub-login" not in here.request.headers.get("cookie", "")
    assert client.get("/hub/api/user").json()["name"] == HUB_NAME  # while at the hub's origin it is her


def test_a_launch_link_for_the_running_environment_goes_to_the_servers_origin(hub, session):
    client, _, url = session
    r = client.get("/hub/launch?resource=cpu-small", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    assert r.headers["location"] == url
