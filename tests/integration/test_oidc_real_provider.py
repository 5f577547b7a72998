"""Single sign-on against a certified OpenID provider nobody here wrote (panva's oidc-provider, configured
strictly by oidcprovider.mjs), through real hubs on loopback (issue 18).

Two hubs share the provider:
- `light` (AuthHub): `usernameClaim: sub` (the provider's subjects are the account ids, so `oidc:jdoe`
  with the display name "Jane Doe"); `offline_access` with `prompt: consent`, so it holds refresh tokens; groups -> teams,
  refresh past access-token expiry, cancel, logout, and last an outage at runtime.
- `full` (the whole hub, local servers): started while the provider is down; default scopes without a
  refresh token, so an expired access token is renewed through the provider's live session while the
  person's server keeps running; the `sub` guard; `groupsScope: ""` so the admins see the groups warning.
"""

from __future__ import annotations

import re
import time
import types
from html import unescape

import psutil
import pytest
import requests
import yaml
from authhub import AuthHub
from hubprocess import HubProcess, demo_values
from realprovider import RealOIDC, cancel, confirm_logout, sign_in
from teamhub.auth.passwords import hash_password
from teamhub.catalog.access import resolve
from teamhub.cli.demo import free_port
from test_auth_hub import checked_catalog, hub_view, values_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ACCESS_SECONDS = 4  # the provider's access-token lifetime: tests outlive it by sleeping a few seconds
ACCOUNTS = {
    "jdoe": {"preferred_username": "jdoe", "name": "Jane Doe", "email": "jdoe@example.org",
             "groups": ["/courses/cv", "/staff"]},
    # another provider account that chose the same (case-folded) username
    "impostor": {"preferred_username": "JDoe", "name": "Not Jane", "email": "other@example.org", "groups": ["/staff"]},
}
ADMIN_PASSWORD = "oidc-real-admin-pass"
UNAVAILABLE = "Lab SSO is unavailable right now: the hub cannot reach the identity provider."


def full_values(folder, provider, port) -> str:
    values = demo_values()
    values["auth"]["refreshSeconds"] = 1
    values["auth"]["local"]["users"]["ada"]["passwordHash"] = hash_password(ADMIN_PASSWORD, 4)
    values["auth"]["oidc"] = {
        "enabled": True, "displayName": "Lab SSO", "issuerUrl": provider.issuer, "clientId": provider.client_id,
        "clientSecret": provider.client_secret, "callbackUrl": f"http://127.0.0.1:{port}/hub/oidc/oauth_callback",
        "groupsScope": ""}
    values["catalog"]["teams"]["cv-course"]["oidcGroups"] = ["/courses/cv"]
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    full_dir, full_port = tmp_path_factory.mktemp("oidc-full"), free_port()
    light = AuthHub({}, tmp_path_factory.mktemp("oidc-light"))
    provider = RealOIDC([f"http://127.0.0.1:{full_port}", light.url], ACCOUNTS, ACCESS_SECONDS)
    full = HubProcess(full_values(full_dir, provider, full_port), full_dir, port=full_port)
    hubs = []
    try:
        full.start()  # the provider is not up yet
        hubs.append(full)
        down_page = requests.get(full.url + "/hub/login", timeout=10).text
        provider.start()
        light.values = values_for(light.url, None, provider, dummy=False)
        light.values["auth"]["oidc"].update(scopes=["openid", "profile", "email", "offline_access"],
                                            extraAuthorizeParams={"prompt": "consent"}, usernameClaim="sub")
        light.start()
        hubs.append(light)
        yield types.SimpleNamespace(full=full, light=light, provider=provider, down_page=down_page)
    finally:
        for hub in hubs:
            hub.stop()
        provider.stop()


def full_admin(stack) -> requests.Session:
    s = requests.Session()
    page = s.get(stack.full.url + "/hub/login", timeout=10)
    r = s.post(stack.full.url + "/hub/local/login", data={"username": "ada", "password": ADMIN_PASSWORD,
                                                          "_xsrf": s.cookies.get("_xsrf")}, timeout=30)
    assert r.url.endswith("/hub/spawn"), (page.status_code, r.status_code, r.url)
    return s


def api(stack, session: requests.Session, method: str, path: str, **kw) -> requests.Response:
    return session.request(method, f"{stack.full.url}/hub/api{path}", timeout=30,
                           headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")}, **kw)


def test_provider_down_at_start_then_found(stack):
    """The full hub started while the provider was down: its login page said so; then discovery succeeded."""
    assert UNAVAILABLE in stack.down_page and re.search(r"<button[^>]*teamhub-oidc[^>]*disabled", stack.down_page)
    deadline = time.monotonic() + 90  # backoff from 2 s, doubling
    while 'href="/hub/oidc/oauth_login"' not in requests.get(stack.full.url + "/hub/login", timeout=10).text:
        assert time.monotonic() < deadline, stack.full.log()[-3000:]
        time.sleep(0.5)
    assert "Traceback" not in stack.full.log()


def test_login_groups_to_teams_and_refresh_past_access_token_expiry(stack):
    hub = stack.light
    s = requests.Session()
    page = sign_in(s, hub.url, "jdoe")
    assert page.url == hub.url + "/hub/home", (page.url, page.text[:500])
    assert re.search(r'title="oidc:jdoe">\s*Jane Doe\s*<', page.text)  # usernameClaim: sub shows the name claim
    state = hub.user("oidc:jdoe")["auth_state"]
    assert "groups" in state["scope"] and "offline_access" in state["scope"]  # groupsScope added, as offered
    assert state["sub"] == "jdoe" and state["display_name"] == "Jane Doe"
    assert state["refresh_token"]  # offline_access with prompt=consent (extraAuthorizeParams)
    person = hub_view(hub, "oidc:jdoe")
    assert person.groups == {"/courses/cv", "/staff"}
    assert "oidc:jdoe" in hub.groups()["cv-course"]
    assert resolve(checked_catalog(hub.values), person).allows("gpu-basic")

    time.sleep(ACCESS_SECONDS + 1.5)
    again = s.get(hub.url + "/hub/home", timeout=30)
    assert again.url == hub.url + "/hub/home" and not again.history  # no trip to the provider: refreshed
    assert hub.user("oidc:jdoe")["auth_state"]["access_token"] != state["access_token"]
    assert "Refreshing oauth access token for oidc:jdoe" in hub.log_text()
    assert "stale auth" not in hub.log_text()


def test_cancel_at_the_provider_returns_to_the_branded_login_page(stack):
    hub = stack.light
    page = cancel(requests.Session(), hub.url)
    assert page.status_code == 200 and page.url.startswith(hub.url + "/hub/login?"), page.url
    assert "Sign-in was cancelled." in page.text and "Physics Lab Jupyter" in page.text
    assert 'href="/hub/oidc/oauth_login' in page.text  # a way back in
    # a forged cancellation (no state cookie) is still refused like any bad callback
    forged = requests.get(hub.url + "/hub/oidc/oauth_callback?error=access_denied&state=x", timeout=10)
    assert forged.status_code == 400


def test_logout_confirms_at_the_provider_and_ends_both_sessions(stack):
    hub = stack.light
    s = requests.Session()
    assert sign_in(s, hub.url, "jdoe").url == hub.url + "/hub/home"
    out = s.get(hub.url + "/hub/logout", timeout=30)
    assert out.url.startswith(stack.provider.issuer) and "Yes, sign me out" in out.text
    back = confirm_logout(s, out)
    assert back.url.split("?")[0] == hub.url + "/hub/login"
    assert s.get(hub.url + "/hub/home", timeout=10).url.split("?")[0] == hub.url + "/hub/login"
    # the provider asks for the password again: its session ended too
    assert 'name="login"' in s.get(hub.url + "/hub/oidc/oauth_login", timeout=30).text


def test_expired_token_without_refresh_token_resumes_through_the_provider_and_the_server_keeps_running(stack):
    hub = stack.full
    s = requests.Session()
    assert sign_in(s, hub.url, "jdoe").url == hub.url + "/hub/spawn"  # the full hub's default page
    admin = full_admin(stack)
    assert not api(stack, admin, "GET", "/users/oidc:jdoe").json()["auth_state"].get("refresh_token")
    r = api(stack, s, "POST", "/users/oidc:jdoe/server", json={"resource": "cpu-small", "sessionMinutes": 30})
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 120
    while not (api(stack, admin, "GET", "/users/oidc:jdoe").json()["servers"].get("") or {}).get("ready"):
        assert time.monotonic() < deadline, hub.log()[-3000:]
        time.sleep(0.5)
    pid = api(stack, admin, "GET", "/users/oidc:jdoe").json()["servers"][""]["state"]["pid"]

    time.sleep(ACCESS_SECONDS + 1.5)
    page = s.get(hub.url + "/hub/home", timeout=30)
    assert page.url == hub.url + "/hub/home", page.url
    trips = [h.headers.get("Location", "") for h in page.history]
    assert any("prompt=none" in t and t.startswith(stack.provider.issuer) for t in trips), trips
    assert psutil.pid_exists(pid) and api(stack, admin, "GET", "/users/oidc:jdoe").json()["servers"][""]["ready"]

    # the provider's session is gone (only the hub's cookies are kept): the login page says why
    t = requests.Session()
    for c in s.cookies:
        if c.name.startswith("jupyterhub") or c.name == "_xsrf":
            t.cookies.set_cookie(c)
    time.sleep(ACCESS_SECONDS + 1.5)
    page = t.get(hub.url + "/hub/home", timeout=30)
    assert page.url.startswith(hub.url + "/hub/login?"), page.url
    assert "Your single sign-on session has ended." in page.text
    assert psutil.pid_exists(pid) and api(stack, admin, "GET", "/users/oidc:jdoe").json()["servers"][""]["ready"]
    assert "Traceback" not in hub.log()


def test_another_provider_account_with_the_same_name_is_refused(stack):
    hub = stack.full
    page = sign_in(requests.Session(), hub.url, "impostor")
    assert page.status_code == 403
    assert "belongs to a different account at the identity provider" in page.text and "administrators" in page.text
    state = api(stack, full_admin(stack), "GET", "/users/oidc:jdoe").json()["auth_state"]
    assert state["sub"] == "jdoe"
    assert "Refused OIDC sign-in as oidc:jdoe" in hub.log() and "Traceback" not in hub.log()


def test_missing_groups_claim_is_logged_and_shown_to_admins(stack):
    """groupsScope: "" (and no mapper at the provider): jdoe got no groups; the admins are told why."""
    hub = stack.full
    warning = "OIDC logins carry no 'groups' claim although teams name oidcGroups (cv-course)"
    assert hub.log().count(warning) == 1, hub.log()[-3000:]
    assert warning in unescape(full_admin(stack).get(hub.url + "/hub/home", timeout=10).text)
    s = requests.Session()
    assert warning not in unescape(sign_in(s, hub.url, "jdoe").text)  # only admins see it


def test_provider_down_at_runtime_keeps_sessions_within_the_grace_time(stack):
    hub = stack.light
    s = requests.Session()
    assert sign_in(s, hub.url, "jdoe").url == hub.url + "/hub/home"
    stack.provider.stop()
    for _ in range(3):
        time.sleep(1.1)  # past auth.refreshSeconds (1): every page load asks the provider again
        page = s.get(hub.url + "/hub/home", timeout=10)
        assert page.url == hub.url + "/hub/home", page.url
    log = hub.log_text()
    assert log.count("oidc:jdoe: cannot refresh sign-in at the identity provider") == 1, log[-3000:]
    assert "Traceback" not in log
