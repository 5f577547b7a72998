"""Why production turns on per-user origins (hub.subdomainHost, issue 23), shown in Chromium.

alice starts a server and opens JupyterLab; then script running in her server's page (what a notebook's output
or a file in a pulled repository can do) tries to act on the hub as her: read a hub page for its xsrf token and
create an API token in her name. With every server on the hub's origin it succeeds; with per-user origins
(http://hub.localhost:<port>, her server on <name>.hub.localhost, which Chromium resolves to loopback itself)
the browser gives the script neither the hub's answer nor the hub's cookie, and no token is created.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml
from browserkit import browser_values, password_of
from hubprocess import HubProcess

LAB_TIMEOUT = 120_000  # ms: the first JupyterLab load is slow on a busy 2-core machine
USER = "local:alice"

# Run in the server's page. `hub` is where the script looks for the hub: its real address, or "" (this origin,
# where the proxy also sends /hub/). Reports what it got at each step; never throws.
ATTACK = """async (hub) => {
  const out = {hub};
  try {
    const home = await fetch(hub + "/hub/home", {credentials: "include"});
    out.home = home.status;
    out.homeUrl = home.url;  // after redirects: the login page when the hub does not know the caller
    const found = (await home.text()).match(/xsrf_token: "([^"]+)"/);
    out.xsrf = !!found;
    const made = await fetch(hub + "/hub/api/users/local:alice/tokens", {
      method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", "X-XSRFToken": found ? found[1] : ""},
      body: JSON.stringify({note: "made by script in the server"}),
    });
    out.token = made.status;
  } catch (e) {
    out.error = String(e);
  }
  return out;
}"""


@pytest.fixture(scope="module", params=["shared-origin", "per-user-origins"])
def hub(request, tmp_path_factory):
    state = tmp_path_factory.mktemp(request.param)
    values_file = state / "values.yaml"
    h = HubProcess(values_file, state)
    values = browser_values(h.url)
    h.per_user = request.param == "per-user-origins"
    h.origin = f"http://hub.localhost:{h.port}" if h.per_user else h.url
    if h.per_user:
        values.setdefault("hub", {})["subdomainHost"] = h.origin
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    h.start()
    yield h
    h.stop()


def test_script_in_a_persons_server_can_act_on_the_hub_only_without_per_user_origins(hub, page):
    page.goto(f"{hub.origin}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", password_of("alice"))
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    page.goto(f"{hub.origin}/hub/spawn")
    page.check("#res-cpu-small")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/user/local(%3A|:)alice/lab"), timeout=LAB_TIMEOUT)
    server = urlsplit(page.url)
    if hub.per_user:
        assert server.hostname.endswith(".hub.localhost") and server.hostname != "hub.localhost", page.url
    else:
        assert f"{server.scheme}://{server.netloc}" == hub.origin

    results = [page.evaluate(ATTACK, where) for where in (hub.origin, "")]
    # alice's tokens, as she sees them at the hub (a GET of the REST API with her own login cookie)
    page.goto(f"{hub.origin}/hub/api/users/{USER}/tokens")
    notes = [t.get("note") for t in json.loads(page.evaluate("() => document.body.innerText"))["api_tokens"]]
    stolen = "made by script in the server" in notes
    if hub.per_user:
        assert not stolen, results
        assert "error" in results[0] and "home" not in results[0], results  # another origin: the browser hides it
        # this origin: the proxy sends /hub/ to the hub, but no hub cookie comes along: not signed in, refused
        assert "/hub/login" in results[1]["homeUrl"] and results[1]["token"] == 403, results
    else:
        assert "/hub/home" in results[0]["homeUrl"], results  # signed in as alice: her hub page and its token
        assert stolen and results[0]["token"] == 201, results  # the threat per-user origins remove
