"""Single sign-on in a real browser, through a real provider's own pages (issue 18): panva's oidc-provider
(tests/integration/oidcprovider.mjs) signs a person in and out; cancelling there lands on the hub's branded
login page (saved as test-output/sso-cancelled.png; `make screenshots` copies it into docs/screenshots/)."""

from __future__ import annotations

import pytest
from browserkit import ARTIFACTS
from integration.authhub import AuthHub
from integration.realprovider import RealOIDC

ACCOUNTS = {"jdoe": {"preferred_username": "jdoe", "name": "Jane Doe", "email": "jdoe@example.org", "groups": ["/courses/cv"]}}
CATALOG = {
    "images": {"scipy": {"name": "quay.io/jupyter/scipy-notebook", "tag": "2026-11-02"}},
    "resources": {"cpu-small": {"displayName": "CPU", "image": "scipy", "cpu": {"request": 1}, "memory": {"request": "1Gi"}}},
    "teams": {"everyone": {"resources": ["cpu-small"]}, "cv-course": {"resources": [], "oidcGroups": ["/courses/cv"]}},
}


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    hub = AuthHub({}, tmp_path_factory.mktemp("sso-hub"))
    provider = RealOIDC([hub.url], ACCOUNTS).start()
    hub.values = {
        "auth": {"oidc": {"enabled": True, "displayName": "University SSO", "issuerUrl": provider.issuer,
                          "clientId": provider.client_id, "clientSecret": provider.client_secret,
                          "callbackUrl": f"{hub.url}/hub/oidc/oauth_callback"}},
        "catalog": CATALOG,
        "branding": {"title": "Physics Lab Jupyter", "colors": {"primary": "#0b5394"}},
    }
    try:
        hub.start()
        yield hub, provider
    finally:
        hub.stop()
        provider.stop()


def press_sso(page, hub) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.get_by_role("button", name="Sign in with University SSO").click()
    page.wait_for_url(lambda url: "/interaction/" in url)


def test_sign_in_and_out_through_the_providers_pages(sso, page):
    hub, provider = sso
    press_sso(page, hub)
    page.fill('input[name="login"]', "jdoe")
    page.fill('input[name="password"]', "any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent page, first visit only
    page.wait_for_url(f"{hub.url}/hub/home")
    assert page.get_by_text("oidc:jdoe").first.is_visible()
    assert "oidc:jdoe" in hub.groups()["cv-course"]

    page.goto(f"{hub.url}/hub/logout")
    page.get_by_role("button", name="Yes, sign me out").click()  # the provider's confirmation
    page.wait_for_url(lambda url: url.startswith(f"{hub.url}/hub/login"))
    # both sessions ended: the button leads to the provider's password form again
    press_sso(page, hub)
    assert page.locator('input[name="password"]').is_visible()


def test_cancel_at_the_provider_returns_to_the_branded_login_page(sso, page):
    hub, _ = sso
    press_sso(page, hub)
    page.get_by_role("link", name="[ Cancel ]").click()
    page.wait_for_url(lambda url: url.startswith(f"{hub.url}/hub/login"))
    assert page.get_by_role("alert").filter(has_text="Sign-in was cancelled.").is_visible()
    assert page.get_by_role("heading", name="Physics Lab Jupyter").is_visible()
    assert page.get_by_role("button", name="Sign in with University SSO").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sso-cancelled.png"), full_page=True)
