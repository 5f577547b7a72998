"""Every login method through a real JupyterHub 6 + configurable-http-proxy on loopback, with fake
GitHub and OIDC providers: the full OAuth dance, teams as groups, refresh, throttling, no impersonation."""

from __future__ import annotations

import re
import time
import types

import pytest
import requests
from authhub import AuthHub
from fakeproviders import FakeGitHub, FakeOIDC
from support import wait_for
from teamhub.auth.passwords import hash_password
from teamhub.catalog.access import Person, resolve
from teamhub.catalog.loader import check
from teamhub.cli.demo import free_port
from teamhub.values.source import Source

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ANNOUNCEMENT = "<b>Maintenance</b> on Friday"


def _catalog():
    res = {"image": "scipy", "cpu": {"request": 1}, "memory": {"request": "1Gi"}}
    return {
        "images": {"scipy": {"name": "quay.io/jupyter/scipy-notebook", "tag": "2026-11-02"}},
        "resources": {"cpu-small": {"displayName": "CPU", **res}, "gpu-basic": {"displayName": "GPU", **res}},
        "teams": {
            "everyone": {"resources": ["cpu-small"]},
            "cv-course": {"resources": ["gpu-basic"], "githubTeams": ["lab:cv-2026"], "oidcGroups": ["/courses/cv"]},
        },
    }


def values_for(hub_url, gh, oidc, dummy=True):
    users = {name: {"passwordHash": hash_password(f"{name}-pass", 4), "teams": teams}
             for name, teams in [("alice", ["cv-course"]), ("ada", []), ("bob", []), ("carol", []), ("erin", []), ("frank", [])]}
    auth = {"admins": ["local:ada"], "refreshSeconds": 1, "local": {"enabled": True, "users": users},
            "dummy": {"enabled": dummy}}
    if gh:
        auth["github"] = {"enabled": True, "url": gh.url, "clientId": gh.client_id, "clientSecret": gh.client_secret,
                          "callbackUrl": f"{hub_url}/hub/github/oauth_callback", "allowedOrganizations": ["lab"]}
    if oidc:
        auth["oidc"] = {"enabled": True, "displayName": "Lab SSO", "issuerUrl": oidc.issuer, "clientId": oidc.client_id,
                        "clientSecret": oidc.client_secret, "callbackUrl": f"{hub_url}/hub/oidc/oauth_callback"}
    return {"auth": auth, "catalog": _catalog(),
            "branding": {"title": "Physics Lab Jupyter", "colors": {"primary": "#0b5394"}, "announcement": ANNOUNCEMENT}}


@pytest.fixture(scope="module")
def providers():
    gh, oidc = FakeGitHub().start(), FakeOIDC().start()
    gh.add_user("octo", orgs={"lab"}, teams={"lab:cv-2026"})
    gh.add_user("octo2", orgs={"lab"}, teams={"lab:cv-2026"})
    gh.add_user("alice", orgs={"lab"})  # same name as a local account
    gh.add_user("mallory", orgs={"elsewhere"}, teams={"elsewhere:cv-2026"})
    oidc.add_user("jdoe", groups=["/courses/cv", "/staff"])
    yield gh, oidc
    gh.stop()
    oidc.stop()


@pytest.fixture(scope="module")
def hub(providers, tmp_path_factory):
    gh, oidc = providers
    h = AuthHub({}, tmp_path_factory.mktemp("authhub"))
    h.values = values_for(h.url, gh, oidc)
    h.start()
    yield h
    h.stop()


def checked_catalog(values):
    result = check(Source(data=values))
    assert result.ok, result.errors
    return result.catalog


def hub_view(hub, name) -> Person:
    """The person as the hub knows them (REST API: auth_state groups, admin)."""
    model = hub.user(name)
    assert model is not None, f"{name} is not a hub user"
    groups = (model.get("auth_state") or {}).get("groups") or ()
    return Person(name, frozenset(groups), model["admin"])


def oauth_login(hub, provider, method, who) -> requests.Response:
    provider.as_user = who
    s = requests.Session()
    r = s.get(f"{hub.url}/hub/{method}/oauth_login", timeout=30)
    r.session = s
    return r


def test_login_page_lists_every_enabled_method(hub):
    html = hub.login_page(requests.Session())
    assert 'action="/hub/local/login' in html and 'name="password"' in html
    assert 'href="/hub/github/oauth_login"' in html and "Sign in with GitHub" in html
    assert 'href="/hub/oidc/oauth_login"' in html and "Sign in with Lab SSO" in html
    assert "Development only, insecure" in html and 'action="/hub/dummy/login' in html
    assert "Physics Lab Jupyter" in html and "#0b5394" in html and ANNOUNCEMENT in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "every asset must come from the hub"


def test_local_login_gets_the_accounts_teams(hub):
    s = requests.Session()
    r = hub.form_login(s, "local", "alice", "alice-pass")
    assert r.status_code == 302 and r.headers["Location"].endswith("/hub/home")
    assert s.get(hub.url + "/hub/home", timeout=10).status_code == 200
    groups = hub.groups()
    assert "local:alice" in groups["cv-course"] and "local:alice" in groups["everyone"]
    access = resolve(checked_catalog(hub.values), hub_view(hub, "local:alice"))
    assert access.allows("gpu-basic")


def test_wrong_password_and_unknown_user_get_the_same_answer(hub):
    wrong = hub.form_login(requests.Session(), "local", "carol", "not-her-password")
    unknown = hub.form_login(requests.Session(), "local", "nobody-here", "whatever")
    assert wrong.status_code == unknown.status_code == 403
    msg = re.compile(r'class="login_error[^"]*"[^>]*>([^<]+)<')
    assert msg.search(wrong.text).group(1) == msg.search(unknown.text).group(1) == "Invalid username or password"
    assert hub.user("local:nobody-here") is None


def test_repeated_failures_are_throttled_with_retry_after(hub):
    for _ in range(5):
        assert hub.form_login(requests.Session(), "local", "bob", "guess").status_code == 403
    r = hub.form_login(requests.Session(), "local", "bob", "guess")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert "Too many failed sign-in attempts" in r.text
    # even the right password waits while the account is locked from this address
    assert hub.form_login(requests.Session(), "local", "bob", "bob-pass").status_code == 429
    # a classmate behind the same address still gets in
    assert hub.form_login(requests.Session(), "local", "erin", "erin-pass").status_code == 302


def forged(real_ip: str | None = None, forwarded: str | None = None) -> requests.Session:
    """A session whose every request carries client-written address headers."""
    s = requests.Session()
    if real_ip:
        s.headers["X-Real-Ip"] = real_ip
    if forwarded:
        s.headers["X-Forwarded-For"] = forwarded
    return s


def test_forged_address_headers_do_not_escape_the_throttle(hub):
    """Through the real configurable-http-proxy: twelve guesses, each claiming another address in X-Real-Ip
    and X-Forwarded-For, once got no 429 (only the 20-per-account cap stopped them)."""
    answers = [hub.form_login(forged(f"198.51.100.{i}", f"203.0.113.{i}"), "local", "frank", "guess").status_code
               for i in range(12)]
    assert answers[:5] == [403] * 5 and set(answers[5:]) == {429}, answers
    assert "Throttled local sign-in for 'frank' from 127.0.0.1" in hub.log_text()


@pytest.fixture(scope="module")
def edge_hub(tmp_path_factory):
    """One hub for two edge cases (a hub start is the slow part): behind a pretend ingress on loopback,
    trusted through auth.local.trustedProxies (the tests write the ingress's X-Forwarded-For entry), five
    failures lock an address; and its OIDC provider is down at start (`edge_hub.oidc_port`, nobody there)."""
    h = AuthHub({}, tmp_path_factory.mktemp("edgehub"))
    h.oidc_port = free_port()
    down = types.SimpleNamespace(issuer=f"http://127.0.0.1:{h.oidc_port}/realms/lab", client_id=FakeOIDC.client_id,
                                 client_secret=FakeOIDC.client_secret)
    h.values = values_for(h.url, None, down, dummy=False)
    h.values["auth"]["local"].update({"trustedProxies": ["127.0.0.1/32"], "throttle": {"addressFailures": 5}})
    h.start()
    yield h
    h.stop()


def test_a_forged_address_cannot_lock_out_the_real_one(edge_hub):
    """One hundred failures sent with a forged classroom address once locked that classroom out for everyone."""
    classroom, attacker = "198.51.100.20", "203.0.113.66"
    # what the ingress forwards for the attacker: the forged entries, then the address it saw
    for i in range(5):
        s = forged(classroom, f"{classroom}, {attacker}")
        assert edge_hub.form_login(s, "local", f"nobody{i}", "guess").status_code == 403
    assert edge_hub.form_login(forged(classroom, f"{classroom}, {attacker}"), "local", "carol", "guess").status_code == 429
    # the classroom itself (and the attacker's forged claim of it) did not count
    assert edge_hub.form_login(forged(None, classroom), "local", "alice", "alice-pass").status_code == 302
    assert f"from {attacker}" in edge_hub.log_text() and f"from {classroom}" not in edge_hub.log_text()


def test_github_member_logs_in_and_teams_decide_resources(hub, providers):
    gh, _ = providers
    r = oauth_login(hub, gh, "github", "octo")
    assert r.status_code == 200 and r.url.endswith("/hub/home")
    person = hub_view(hub, "github:octo")
    assert person.groups == {"lab:cv-2026"}
    assert "github:octo" in hub.groups()["cv-course"]
    assert resolve(checked_catalog(hub.values), person).allows("gpu-basic")
    state = hub.user("github:octo")["auth_state"]
    assert state["scope"] == ["read:org", "user:email"]  # comma-separated scopes split correctly
    assert state["github_user"]["email"] == "octo@users.example.org"  # so the private e-mail was fetched


def test_github_outsider_is_refused_with_a_clear_message(hub, providers):
    gh, _ = providers
    r = oauth_login(hub, gh, "github", "mallory")
    assert r.status_code == 403
    assert "not a member of an organisation or team allowed on this hub (lab)" in r.text
    assert hub.user("github:mallory") is None


def test_leaving_a_github_team_removes_the_resources_at_refresh(hub, providers):
    gh, _ = providers
    r = oauth_login(hub, gh, "github", "octo2")
    assert r.url.endswith("/hub/home")
    catalog = checked_catalog(hub.values)
    assert resolve(catalog, hub_view(hub, "github:octo2")).allows("gpu-basic")
    gh.users["octo2"]["teams"].clear()

    def refreshed():  # a request after refreshSeconds (1) asks the provider again
        assert r.session.get(hub.url + "/hub/home", timeout=10).status_code == 200
        return hub_view(hub, "github:octo2").groups == frozenset()

    wait_for(refreshed, "the hub to drop octo2's teams at a refresh")
    person = hub_view(hub, "github:octo2")
    assert not resolve(catalog, person).allows("gpu-basic")
    assert "github:octo2" not in hub.groups()["cv-course"]
    # leaving the organisation altogether ends the session at the next refresh
    gh.users["octo2"]["orgs"].clear()
    wait_for(lambda: r.session.get(hub.url + "/hub/home", timeout=10).url.split("?")[0].endswith("/hub/login"),
             "the session to end at the next refresh after octo2 left the organisation")


def test_oidc_login_groups_and_logout_ends_the_provider_session(hub, providers):
    _, oidc = providers
    r = oauth_login(hub, oidc, "oidc", "jdoe")
    assert r.status_code == 200 and r.url.endswith("/hub/home")
    person = hub_view(hub, "oidc:jdoe")
    assert person.groups == {"/courses/cv", "/staff"}
    assert resolve(checked_catalog(hub.values), person).allows("gpu-basic")
    assert "oidc:jdoe" in hub.groups()["cv-course"]
    out = r.session.get(hub.url + "/hub/logout", timeout=10)
    assert out.url.split("?")[0].endswith("/hub/login")
    assert oidc.logouts and oidc.logouts[-1].get("id_token_hint") and oidc.logouts[-1]["post_logout_redirect_uri"] == hub.url + "/hub/login"
    again = r.session.get(hub.url + "/hub/home", timeout=10)
    assert again.url.split("?")[0].endswith("/hub/login")


def test_oidc_cancel_and_an_expired_token_without_refresh_token(hub, providers):
    """The fake provider is strict like real ones (no refresh token without offline_access and consent):
    a cancel at the provider lands on the login page; an expired access token is renewed through the
    provider's session (prompt=none), or the login page says the session ended."""
    _, oidc = providers
    oidc.add_user("kim", groups=["/courses/cv"])
    oidc.cancel = True
    try:
        page = oauth_login(hub, oidc, "oidc", "kim")
    finally:
        oidc.cancel = False
    assert page.status_code == 200 and "Sign-in was cancelled." in page.text and hub.user("oidc:kim") is None

    oidc.access_seconds = 1
    try:
        r = oauth_login(hub, oidc, "oidc", "kim")
    finally:
        oidc.access_seconds = 300
    assert r.url.endswith("/hub/home") and not hub.user("oidc:kim")["auth_state"].get("refresh_token")
    # once the token has expired (1 s), the next request renews it through the provider's session
    again = wait_for(lambda: (a := r.session.get(hub.url + "/hub/home", timeout=10)) and
                     any("prompt=none" in h.headers.get("Location", "") for h in a.history) and a,
                     "a renewal through prompt=none")
    assert again.url.endswith("/hub/home")
    oidc.as_user = None  # the provider's session is gone, and kim's access token expires
    oidc.expires.update({token: 0 for token, name in oidc.tokens.items() if name == "kim"})
    ended = wait_for(lambda: (e := r.session.get(hub.url + "/hub/home", timeout=10)) and "/hub/login?" in e.url and e,
                     "the hub to notice the ended session after auth.refreshSeconds")
    assert "Your single sign-on session has ended." in ended.text
    assert "Traceback" not in hub.log_text()


def test_no_method_can_act_as_a_same_named_person_of_another(hub, providers):
    gh, _ = providers
    s = requests.Session()
    assert hub.form_login(s, "dummy", "ada", "anything").status_code == 302
    assert hub.form_login(requests.Session(), "dummy", "local:alice", "x").status_code == 302
    dummy_ada = hub.user("dummy:ada")
    assert dummy_ada is not None and not dummy_ada["admin"]
    assert hub.user("dummy:local:alice")["groups"] == ["everyone"]
    # a local login cannot name another method's person
    assert hub.form_login(requests.Session(), "local", "github:octo", "x").status_code == 403
    # GitHub's "alice" is not local:alice and does not inherit her teams
    r = oauth_login(hub, gh, "github", "alice")
    assert r.url.endswith("/hub/home")
    assert hub.user("github:alice")["groups"] == ["everyone"]
    assert "local:alice" in hub.groups()["cv-course"] and "github:alice" not in hub.groups()["cv-course"]
    # the real local admin is an admin
    assert hub.form_login(requests.Session(), "local", "ada", "ada-pass").status_code == 302
    assert hub.user("local:ada")["admin"] is True


def test_oidc_provider_down_at_start_then_up(edge_hub):
    """An identity-provider outage during a restart kept the whole hub down (AuthConfigError at start)."""
    h, port = edge_hub, edge_hub.oidc_port
    provider = None
    try:
        html = h.login_page(requests.Session())
        assert 'href="/hub/oidc/oauth_login"' not in html
        assert re.search(r"<button[^>]*teamhub-oidc[^>]*disabled", html)
        sentence = "Lab SSO is unavailable right now: the hub cannot reach the identity provider."
        assert sentence in html
        r = requests.get(h.url + "/hub/oidc/oauth_login", timeout=10, allow_redirects=False)
        assert r.status_code == 503 and sentence in r.text
        assert h.form_login(requests.Session(), "local", "alice", "alice-pass").status_code == 302
        for _ in range(3):
            h.login_page(requests.Session())
        log = h.log_text()
        assert "Traceback" not in log, log[-3000:]
        assert log.count("cannot read") == 1, log[-3000:]  # one line for the outage, not one per page or retry

        provider = FakeOIDC(port=port).start()
        provider.add_user("jdoe", groups=["/courses/cv"])
        deadline = time.monotonic() + 60  # the background retry backs off from 2 s, doubling
        while 'href="/hub/oidc/oauth_login"' not in h.login_page(requests.Session()):
            assert time.monotonic() < deadline, h.log_text()[-3000:]
            time.sleep(0.5)
        assert sentence not in h.login_page(requests.Session())
        r = oauth_login(h, provider, "oidc", "jdoe")
        assert r.status_code == 200 and r.url.endswith("/hub/home")
        assert "oidc:jdoe" in h.groups()["cv-course"]
        assert "Traceback" not in h.log_text()

        # down again while jdoe is signed in: the session stays (auth.oidc.outageGraceMinutes), one WARNING
        provider.stop()
        provider = None
        for _ in range(3):
            time.sleep(1.1)  # past auth.refreshSeconds (1): every page load asks the provider again
            page = r.session.get(h.url + "/hub/home", timeout=10)
            assert page.status_code == 200 and page.url.endswith("/hub/home"), page.url
        log = h.log_text()
        assert "Traceback" not in log, log[-3000:]
        assert log.count("oidc:jdoe: cannot refresh sign-in at the identity provider") == 1, log[-3000:]
    finally:
        if provider:
            provider.stop()


def test_local_accounts_from_a_mounted_secret_file(tmp_path):
    accounts = tmp_path / "local-users.yaml"
    accounts.write_text(f"dave:\n  passwordHash: '{hash_password('dave-pass', 4)}'\n  teams: [cv-course]\n")
    h = AuthHub({}, tmp_path / "hub", env={"TEAMHUB_LOCAL_USERS_FILE": str(accounts)})
    h.values = values_for(h.url, None, None, dummy=False)
    h.values["auth"]["local"]["existingSecret"] = {"name": "lab-accounts", "key": "users.yaml"}
    h.start()
    try:
        html = h.login_page(requests.Session())
        assert "Development only" not in html and "oauth_login" not in html
        assert h.form_login(requests.Session(), "local", "dave", "dave-pass").status_code == 302
        assert sorted(h.user("local:dave")["groups"]) == ["cv-course", "everyone"]
    finally:
        h.stop()
