"""Validation of the auth and branding sections; the example values files."""

from __future__ import annotations

import copy

import pytest
from support import CONFIG, load_demo, run_teamhub
from teamhub.catalog.loader import check
from teamhub.values.source import Source

BASE = load_demo().source.data


def problems(patch):
    data = copy.deepcopy(BASE)
    patch(data)
    return [(p.level, ".".join(map(str, p.path)), p.message) for p in check(Source(data=data), demo=True).problems]


def test_callback_url_must_be_the_hubs_route():
    def patch(d):
        d["auth"]["github"] = {"enabled": True, "clientId": "x", "clientSecret": "y", "allowedOrganizations": ["lab"],
                               "callbackUrl": "https://hub.example.org/hub/oauth_callback"}
    [(level, path, msg)] = problems(patch)
    assert (level, path) == ("error", "auth.github.callbackUrl") and "/github/oauth_callback" in msg


def test_github_without_allowed_organisations_warns():
    def patch(d):
        d["auth"]["github"] = {"enabled": True, "clientId": "x", "clientSecret": "y",
                               "callbackUrl": "https://hub.example.org/hub/github/oauth_callback"}
    assert problems(patch) == [("warning", "auth.github.allowedOrganizations",
                                "empty: every GitHub account may log in (each gets the team everyone)")]


@pytest.mark.parametrize("branding, ok", [
    ({"title": "Lab", "colors": {"primary": "#0b5394"}, "announcement": "<b>hi</b>", "announcementOn": ["login", "spawn"]}, True),
    ({"colors": {"primary": "blue"}}, False),
    ({"announcementOn": ["admin"]}, False),
    ({"logo": "https://cdn.example.org/logo.png"}, False),
    ({"logo": "data:image/png;base64,iVBORw0KGgo="}, True),
    ({"logo": "/srv/teamhub/logo.svg"}, True),
])
def test_branding_schema(branding, ok):
    assert (not any(level == "error" for level, _, _ in problems(lambda d: d.update(branding=branding)))) is ok


def test_throttle_and_refresh_settings():
    assert problems(lambda d: d["auth"]["local"].update(throttle={"userFailures": 0})) != []
    assert problems(lambda d: d["auth"].update(refreshSeconds=60)) == []


@pytest.mark.parametrize("name", ["local-only.yaml", "github-and-local.yaml", "oidc-keycloak.yaml"])
def test_examples_validate(name):
    r = run_teamhub("validate", CONFIG / "examples" / name)
    assert r.returncode == 0, r.stdout + r.stderr
    # The examples name public images by tag (no digest can be invented for them): the only warnings are the
    # ones a production file without digests gets.
    warnings = [line for line in r.stdout.splitlines() if "warning" in line.lower() and "warning(s)" not in line]
    assert all("no digest" in line for line in warnings), r.stdout
