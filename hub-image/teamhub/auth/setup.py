"""`configure(c, checked)`: turn the `auth` and `branding` sections of values into JupyterHub config."""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .. import paths
from .accounts import accounts_from_values
from .clientaddr import LOOPBACK
from .discovery import Discovery, DiscoveryError
from .identity import DisplayNames, GroupsNotice
from .methods import (
    Shared,
    TeamhubDummyAuthenticator,
    TeamhubGitHubAuthenticator,
    TeamhubLocalAuthenticator,
    TeamhubOIDCAuthenticator,
)
from .multi import TeamhubMultiAuthenticator
from .throttle import ThrottleSettings

TEMPLATES = Path(__file__).parent / "templates"
SECRET_ENV = {"github": "TEAMHUB_GITHUB_CLIENT_SECRET", "oidc": "TEAMHUB_OIDC_CLIENT_SECRET"}


class AuthConfigError(ValueError):
    pass


def _client_secret(method: str, conf: dict) -> str:
    secret = conf.get("clientSecret") or os.environ.get(SECRET_ENV[method], "")
    if not secret:
        raise AuthConfigError(f"auth.{method}: no clientSecret in values and env {SECRET_ENV[method]} is empty "
                              f"(the chart fills it from auth.{method}.existingSecret)")
    return secret


def _login_url_beside(callback: str, method: str) -> str:
    """https://hub/hub/oidc/oauth_callback -> https://hub/hub/login"""
    parts = urlsplit(callback)
    path = parts.path
    tail = f"/{method}/oauth_callback"
    path = path[: -len(tail)] + "/login" if path.endswith(tail) else "/hub/login"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def authenticators(values: dict, catalog, own_proxy: str = LOOPBACK, notice: GroupsNotice | None = None,
                   display_names: DisplayNames | None = None) -> list:
    """The multi-authenticator's entries, one per enabled method, in login-page order. `own_proxy`: how
    the local method recognises the hub's own proxy (see clientaddr.OwnProxy)."""
    auth = values["auth"]
    admins = set(auth.get("admins") or ())
    need_state = any(auth.get(m, {}).get("enabled") for m in ("github", "oidc"))
    common = {"teamhub_catalog": Shared(catalog), "manage_groups": True, "admin_users": admins, "enable_auth_state": need_state}
    entries = []
    local = auth.get("local", {})
    if local.get("enabled"):
        settings = asdict(ThrottleSettings.from_values(local["throttle"]))
        entries.append({"authenticator_class": TeamhubLocalAuthenticator, "url_prefix": "/local", "config": {
            **common, "accounts": accounts_from_values(values), "throttle_settings": settings,
            "trusted_proxies": list(local.get("trustedProxies") or ()), "own_proxy": own_proxy}})
    gh = auth.get("github", {})
    if gh.get("enabled"):
        orgs = list(gh.get("allowedOrganizations") or ())
        conf = {
            **common,
            "client_id": gh["clientId"],
            "client_secret": _client_secret("github", gh),
            "oauth_callback_url": gh["callbackUrl"],
            "allowed_organizations": set(orgs),
            "allow_all": not orgs,
            "scope": ["read:org", "user:email"],
            "populate_teams_in_auth_state": True,
            "custom_403_message": (
                "Your GitHub account is not a member of an organisation or team allowed on this hub"
                + (f" ({', '.join(orgs)})" if orgs else "")
                + ". Ask the hub's administrators to add you, then sign in again."),
        }
        if gh.get("url"):
            conf["github_url"] = gh["url"].rstrip("/")
        entries.append({"authenticator_class": TeamhubGitHubAuthenticator, "url_prefix": "/github", "config": conf})
    oidc = auth.get("oidc", {})
    if oidc.get("enabled"):
        name = oidc["displayName"]
        found = Discovery(oidc["issuerUrl"], name)
        try:
            found.first_try()  # an unreachable provider is retried in the background, never fatal
        except DiscoveryError as exc:
            raise AuthConfigError(str(exc)) from None
        entries.append({"authenticator_class": TeamhubOIDCAuthenticator, "url_prefix": "/oidc", "config": {
            **common,
            "login_service": name,
            "discovery": found,
            "client_id": oidc["clientId"],
            "client_secret": _client_secret("oidc", oidc),
            "oauth_callback_url": oidc["callbackUrl"],
            "post_logout_url": _login_url_beside(oidc["callbackUrl"], "oidc"),
            "username_claim": oidc["usernameClaim"],
            "groups_claim": oidc["groupsClaim"],
            "groups_scope": oidc["groupsScope"],
            "groups_notice": notice,
            "display_names": display_names,
            "scope": list(oidc["scopes"]),
            "extra_authorize_params": dict(oidc["extraAuthorizeParams"]),
            "basic_auth": oidc["tokenEndpointAuthMethod"] == "client_secret_basic",
            "outage_grace_seconds": float(oidc["outageGraceMinutes"]) * 60,
            "allow_all": True,
            "custom_403_message": "Your single sign-on account may not use this hub. Ask the hub's administrators.",
        }})
    if auth.get("dummy", {}).get("enabled"):
        entries.append({"authenticator_class": TeamhubDummyAuthenticator, "url_prefix": "/dummy",
                        "config": {**common, "allow_all": True}})
    return entries


def login_methods(entries: list) -> list:
    """What templates/login.html shows, in order: forms first, then provider buttons."""
    out = []
    for e in entries:
        cls, prefix = e["authenticator_class"], e["url_prefix"].strip("/")
        if cls is TeamhubLocalAuthenticator:
            out.append({"kind": "form", "method": "local", "path": f"{prefix}/login", "label": "Sign in"})
        elif cls is TeamhubDummyAuthenticator:
            out.append({"kind": "dummy", "method": "dummy", "path": f"{prefix}/login", "label": "Sign in (dummy)"})
        elif cls is TeamhubGitHubAuthenticator:
            out.append({"kind": "button", "method": "github", "path": f"{prefix}/oauth_login", "label": "Sign in with GitHub"})
        else:
            out.append({"kind": "button", "method": "oidc", "path": f"{prefix}/oauth_login",
                        "label": f"Sign in with {e['config']['login_service']}", "status": e["config"]["discovery"]})
    return out


def _logo_file(logo: str) -> str:
    if not logo.startswith("data:"):
        return logo
    header, _, payload = logo.partition(",")
    ext = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}.get(
        header[5:].split(";")[0], ".img")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise AuthConfigError("branding.logo: the data: URI is not valid base64") from exc
    folder = paths.data_dir()
    if not os.access(folder, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="teamhub-brand-"))
    path = folder / f"branding-logo{ext}"
    path.write_bytes(data)
    return str(path)


def branding_vars(values: dict) -> dict:
    b = values.get("branding") or {}
    colors = b.get("colors") or {}
    show = set(b["announcementOn"])
    out = {"teamhub_brand": {
        "title": b["title"],
        "subtitle": b.get("subtitle") or "",
        "primary": colors.get("primary") or "",
        "primary_text": colors.get("primaryText") or "",
        "background": colors.get("background") or "",
        "text": colors.get("text") or "",
    }}
    if b.get("announcement"):
        for page in ("login", "home", "spawn"):
            out[f"announcement_{page}"] = b["announcement"] if page in show else ""
    return out


def configure(c, checked, own_proxy: str = LOOPBACK) -> None:
    """Configure login and branding from checked values (the loader has merged the accounts of
    auth.local.existingSecret already: values.validation.load's accounts_file)."""
    values, catalog = checked.values, checked.catalog
    auth = values["auth"]
    notice, display_names = GroupsNotice(), DisplayNames()
    entries = authenticators(values, catalog, own_proxy, notice, display_names)
    c.JupyterHub.authenticator_class = TeamhubMultiAuthenticator
    c.TeamhubMultiAuthenticator.authenticators = entries
    c.TeamhubMultiAuthenticator.admin_users = set(auth.get("admins") or ())
    c.TeamhubMultiAuthenticator.allow_all = True  # each method decides who is allowed
    c.TeamhubMultiAuthenticator.manage_groups = True  # teams -> JupyterHub groups at login and refresh
    c.TeamhubMultiAuthenticator.enable_auth_state = entries[0]["config"]["enable_auth_state"] if entries else False
    c.TeamhubMultiAuthenticator.auth_refresh_age = int(auth["refreshSeconds"])
    c.TeamhubMultiAuthenticator.refresh_pre_spawn = True

    c.JupyterHub.template_paths.prepend([str(TEMPLATES)])
    tvars = {"teamhub_auth_notice": notice, "teamhub_display_names": display_names,
             "teamhub_login": {"methods": login_methods(entries),
                               "dummy": any(e["authenticator_class"] is TeamhubDummyAuthenticator for e in entries)}}
    tvars.update(branding_vars(values))
    c.JupyterHub.template_vars.update(tvars)
    logo = (values.get("branding") or {}).get("logo")
    if logo:
        c.JupyterHub.logo_file = _logo_file(logo)
