"""Helpers of the browser tier, importable from its tests (conftest.py is not: its module name is shared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from hubprocess import ROOT
from teamhub.auth.passwords import hash_password

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-output"
# Chromium's own background traffic is refused by this machine's closed network; turn it off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps"]

# --- the hub's values ------------------------------------------------------------------------------

VALUES = Path(__file__).resolve().parent / "values.yaml"


def password_of(name: str) -> str:
    return f"{name}-demo-pass"


def browser_values(hub_url: str, gh=None, oidc=None) -> dict:
    """tests/browser/values.yaml with cheap password hashes and, when given, the fake GitHub and OIDC."""
    values = yaml.safe_load(VALUES.read_text())
    for name, user in values["auth"]["local"]["users"].items():
        user["passwordHash"] = hash_password(password_of(name), 4)
    if gh:
        values["auth"]["github"] = {"enabled": True, "url": gh.url, "clientId": gh.client_id, "clientSecret": gh.client_secret,
                                    "callbackUrl": f"{hub_url}/hub/github/oauth_callback", "allowedOrganizations": ["lab"]}
    if oidc:
        values["auth"]["oidc"] = {"enabled": True, "displayName": "University SSO", "issuerUrl": oidc.issuer,
                                  "clientId": oidc.client_id, "clientSecret": oidc.client_secret,
                                  "callbackUrl": f"{hub_url}/hub/oidc/oauth_callback"}
    return values



def http_login(hub, name: str):
    """A logged-in httpx client (hub.login with the test password)."""
    return hub.login(name, password_of(name))
