"""The login methods, one Authenticator each, run side by side under `multi.TeamhubMultiAuthenticator`.

Every method returns (at login and at every refresh) `groups` = the person's catalog teams, which the hub
keeps as JupyterHub groups (`manage_groups`), and for GitHub/OIDC stores the provider's groups in
auth_state["groups"] for `teamhub.auth.person_for`.

Names inside a method are bare (`octo`); the multi-authenticator adds the method prefix (`github:octo`).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections import Counter
from urllib.parse import urlencode

from jupyterhub.auth import Authenticator, DummyAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Any, Dict, Float, List, Unicode

from ..catalog.access import Person, teams_of
from .clientaddr import LOOPBACK, OwnProxy, client_address, networks
from .identity import refuse_other_subject
from .oidcflow import OIDCCallbackHandler, OIDCLoginHandler, mark_for_reauth
from .passwords import hash_password, verify_password_off_loop
from .throttle import CheckQueue, LoginThrottle, ThrottleSettings


class Shared:
    """Hands an object to sub-authenticators through traitlets config, which deep-copies values."""

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo):
        return self


class TeamsMixin(Authenticator):
    """Shared by every method: catalog teams for a person of this method."""

    teamhub_method = ""  # the username prefix, without the colon
    teamhub_label = ""  # what the login page shows
    teamhub_catalog = Any(None, config=True, help="Shared(the teamhub catalog).")

    def teams_for(self, name: str, provider_groups=()) -> list:
        person = Person(f"{self.teamhub_method}:{name}".lower(), frozenset(provider_groups))
        catalog = self.teamhub_catalog
        return list(teams_of(getattr(catalog, "value", catalog), person))

    def refreshed(self, user, teams: list) -> dict | bool:
        """refresh_user's answer for a method whose teams come from the values alone (local, dummy): True when
        the hub already keeps exactly these teams as the person's groups, so JupyterHub writes nothing before
        a start (it would otherwise save the groups and auth state again, one database commit per start)."""
        if {g.name for g in getattr(user, "groups", None) or ()} == set(teams):
            return True
        return {"name": user.name, "groups": teams}

    async def provider_logout_url(self, user, auth_state, handler) -> str | None:
        """Where to send the browser after the hub session ended (None: the login page)."""
        return None


class _OAuthTeams(TeamsMixin):
    def get_user_groups(self, auth_state: dict):
        """Catalog teams (oauthenticator calls this at login and refresh when manage_groups is on)."""
        name = self.normalize_username(self.user_info_to_username(auth_state[self.user_auth_state_key]))
        return set(self.teams_for(name, auth_state.get("groups") or ()))


# --- GitHub ---------------------------------------------------------------------------------------

class TeamhubGitHubAuthenticator(_OAuthTeams, GitHubOAuthenticator):
    teamhub_method = "github"

    def build_auth_state_dict(self, token_info, user_info):
        state = super().build_auth_state_dict(token_info, user_info)
        # GitHub reports granted scopes comma-separated ("read:org,user:email"); oauthenticator 17.4.0
        # splits on spaces only, so scope checks (e.g. the private e-mail lookup) silently failed.
        raw = token_info.get("scope", "")
        if isinstance(raw, str):
            state["scope"] = [s for s in re.split(r"[,\s]+", raw) if s]
        return state

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model["auth_state"]
        state["groups"] = sorted({
            f"{t['organization']['login']}:{t['slug']}".lower()
            for t in state.get("teams") or () if t.get("slug") and (t.get("organization") or {}).get("login")
        })
        return auth_model

    async def refresh_user(self, user, handler=None, **kwargs):
        model = await super().refresh_user(user, handler, **kwargs)
        if isinstance(model, dict) and self.allowed_organizations and not self.allow_all:
            # oauthenticator re-reads teams but does not re-check membership: someone who left every
            # allowed organisation must sign in again (and is then refused).
            if not await GitHubOAuthenticator.check_allowed(self, model["name"], model):
                self.log.info("%s is no longer in an allowed GitHub organisation", user.name)
                return False
        return model


# --- OpenID Connect --------------------------------------------------------------------------------

def _jwt_claims(token: str | None) -> dict:
    """Claims of an ID token received straight from the token endpoint over TLS (OIDC Core 3.1.3.7:
    TLS server validation may replace the signature check there)."""
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}


class TeamhubOIDCAuthenticator(_OAuthTeams, GenericOAuthenticator):
    teamhub_method = "oidc"
    login_handler = OIDCLoginHandler
    callback_handler = OIDCCallbackHandler
    groups_claim = Unicode("groups", config=True, help="The claim (userinfo or ID token) listing groups.")
    groups_scope = Unicode("groups", config=True, help="auth.oidc.groupsScope: requested when the provider offers it.")
    groups_notice = Any(None, config=True, help="teamhub.auth.identity.GroupsNotice for the admins' pages.")
    display_names = Any(None, config=True, help="teamhub.auth.identity.DisplayNames, kept with usernameClaim: sub.")
    end_session_url = Unicode("", config=True, help="The provider's end_session_endpoint.")
    post_logout_url = Unicode("", config=True, help="Absolute URL the provider returns to after logout.")
    discovery = Any(None, config=True, help="teamhub.auth.discovery.Discovery: the endpoints, once known.")
    outage_grace_seconds = Float(3600.0, config=True, help="auth.oidc.outageGraceMinutes, in seconds.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._outage_since: dict = {}  # person -> when refreshing at the provider first failed
        self.offered_scopes: list | None = None  # the provider's scopes_supported, once discovered
        if self.discovery is not None:
            self.discovery.when_found(self._use_endpoints)
            try:
                self.discovery.start_retrying()
            except RuntimeError:  # no event loop yet: the first visit to oauth_login starts it
                pass

    async def refresh_user(self, user, handler=None, **kwargs):
        """While the provider cannot be reached, a signed-in person keeps their session (teams as last read)
        for `outage_grace_seconds` from the first failed refresh, with one WARNING line per person, instead
        of a traceback on every request of every page."""
        try:
            model = await super().refresh_user(user, handler, **kwargs)
            if model is False:  # expired and not refreshable: try the provider's live session (oidcflow)
                mark_for_reauth(handler)
        except (OSError, HTTPClientError) as exc:  # OSError includes TimeoutError and refused connections
            if isinstance(exc, HTTPClientError) and exc.code < 500:
                raise
            now = time.monotonic()
            since = self._outage_since.setdefault(user.name, now)
            if now - since > self.outage_grace_seconds:
                del self._outage_since[user.name]  # a later outage counts afresh
                self.log.warning("%s: the identity provider has been unreachable for %d minutes; sign in again",
                                 user.name, (now - since) // 60)
                return False
            if since == now:
                self.log.warning("%s: cannot refresh sign-in at the identity provider (%s); keeping the session "
                                 "for up to %d minutes", user.name, exc, self.outage_grace_seconds // 60)
            return True
        self._outage_since.pop(user.name, None)
        return model

    def _use_endpoints(self, doc: dict) -> None:
        self.authorize_url = doc["authorization_endpoint"]
        self.token_url = doc["token_endpoint"]
        self.userdata_url = doc["userinfo_endpoint"]
        self.end_session_url = doc.get("end_session_endpoint") or ""
        self.offered_scopes = doc.get("scopes_supported") or None
        # Ask for the scope that carries the groups claim only where the provider lists it: Google and
        # Entra ID refuse a login that requests a scope they do not know.
        if self.groups_scope and self.groups_scope not in self.scope and (
                self.offered_scopes is None or self.groups_scope in self.offered_scopes):
            self.scope = [*self.scope, self.groups_scope]

    async def authenticate(self, handler, data=None, **kwargs):
        model = await super().authenticate(handler, data, **kwargs)
        if model:
            await refuse_other_subject(handler, f"{self.teamhub_method}:{model['name']}", model["auth_state"].get("sub"))
        return model

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model["auth_state"]
        info = state.get(self.user_auth_state_key) or {}
        groups = info.get(self.groups_claim)
        if groups is None:
            groups = _jwt_claims(state.get("id_token")).get(self.groups_claim)
        if groups is None:
            self._note_missing_groups(auth_model["name"])
        if isinstance(groups, str):
            groups = [groups]
        state["groups"] = sorted({str(g) for g in groups or () if g})
        # The provider's stable identifier, checked at every later login (identity.refuse_other_subject)
        state["sub"] = str(info.get("sub") or _jwt_claims(state.get("id_token")).get("sub") or "")
        state["display_name"] = str(info.get("name") or info.get("preferred_username") or auth_model["name"])
        if self.username_claim == "sub" and self.display_names is not None:
            self.display_names[f"{self.teamhub_method}:{auth_model['name']}"] = state["display_name"]
        return auth_model

    def _note_missing_groups(self, name: str) -> None:
        catalog = getattr(self.teamhub_catalog, "value", self.teamhub_catalog)
        teams = sorted({key for keys in getattr(catalog, "by_oidc", {}).values() for key in keys})
        if teams and self.groups_notice is not None:
            self.groups_notice.missing(f"{self.teamhub_method}:{name}", self.groups_claim, self.groups_scope,
                                       list(self.scope), self.offered_scopes, teams)

    async def provider_logout_url(self, user, auth_state, handler):
        if not self.end_session_url:
            return None
        params = {"client_id": self.client_id}
        if self.post_logout_url:
            params["post_logout_redirect_uri"] = self.post_logout_url
        if auth_state and auth_state.get("id_token"):
            params["id_token_hint"] = auth_state["id_token"]
        sep = "&" if "?" in self.end_session_url else "?"
        return f"{self.end_session_url}{sep}{urlencode(params)}"


# --- local accounts -------------------------------------------------------------------------------

class TeamhubLocalAuthenticator(TeamsMixin):
    """bcrypt-checked accounts from values / a mounted Secret, with throttling of failures."""

    teamhub_method = "local"
    login_service = ""  # a form, not a button
    accounts = Dict(config=True, help="login name -> teamhub.auth.accounts.Account")
    throttle_settings = Dict(config=True, help="ThrottleSettings fields")
    trusted_proxies = List(Unicode(), config=True, help="auth.local.trustedProxies: CIDRs of proxies in front of ours")
    own_proxy = Unicode(LOOPBACK, config=True, help="How to recognise the hub's own proxy (clientaddr.OwnProxy)")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.throttle = LoginThrottle(ThrottleSettings(**self.throttle_settings))
        self.checks = CheckQueue()
        self._trusted = networks(self.trusted_proxies)
        self._own_proxy = OwnProxy(self.own_proxy)
        # Unknown names are checked against a hash of the accounts' usual cost, so they take as long
        # as a wrong password for a real account.
        costs = Counter(int(a.password_hash.split("$")[2]) for a in self.accounts.values())
        cost = costs.most_common(1)[0][0] if costs else 12
        self._dummy_hash = hash_password(secrets.token_urlsafe(24), rounds=cost)

    async def client_address(self, handler) -> str:
        """From the proxies' X-Forwarded-For entries, never the client's X-Real-Ip (see clientaddr)."""
        request = getattr(handler, "request", None)
        if request is None:
            return "unknown"
        context = getattr(request.connection, "context", None)
        sock = getattr(context, "address", None)
        peer = sock[0] if isinstance(sock, tuple) and sock else getattr(context, "_orig_remote_ip", "")
        return await client_address(peer, request.headers.get_list("X-Forwarded-For"), self._trusted, self._own_proxy)

    async def authenticate(self, handler, data):
        name = (data.get("username") or "").strip().lower()
        if name.startswith("local:"):
            name = name[len("local:"):]
        password = data.get("password") or ""
        address = await self.client_address(handler)
        # Bound the line of checks from this address, then reserve the attempt before the check: concurrent
        # guesses are limited exactly like sequential ones (throttle.py).
        wait = self.checks.retry_after(address) or self.throttle.reserve(name, address)
        if wait:
            self.log.warning("Throttled local sign-in for %r from %s (%d s)", name[:64], address, wait)
            err = web.HTTPError(429, f"Too many failed sign-in attempts. Try again in {wait} seconds.")
            err.headers = {"Retry-After": str(wait)}
            raise err
        account = self.accounts.get(name)
        try:
            async with self.checks.turn(address):
                ok = await verify_password_off_loop(password, account.password_hash if account else self._dummy_hash)
        finally:
            self.throttle.release(name, address)
        if not (ok and account):
            self.throttle.failed(name, address)
            self.log.warning("Failed local sign-in for %r from %s", name[:64], address)
            return None
        self.throttle.succeeded(name, address)
        return {"name": name, "groups": self.teams_for(name)}

    async def check_allowed(self, username, authentication=None):
        return username in self.accounts  # authenticate() already checked the password

    async def refresh_user(self, user, handler=None, **kwargs):
        name = user.name.partition(":")[2]
        if name not in self.accounts:
            return False  # the account was removed: the session ends
        return self.refreshed(user, self.teams_for(name))


# --- dummy ----------------------------------------------------------------------------------------

class TeamhubDummyAuthenticator(TeamsMixin, DummyAuthenticator):
    """Development only: any name and password."""

    teamhub_method = "dummy"
    login_service = ""

    async def authenticate(self, handler, data):
        name = (data.get("username") or "").strip().lower()
        if not name:
            return None
        return {"name": name, "groups": self.teams_for(name)}

    async def refresh_user(self, user, handler=None, **kwargs):
        return self.refreshed(user, self.teams_for(user.name.partition(":")[2]))
