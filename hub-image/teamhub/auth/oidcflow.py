"""The browser's way through single sign-on, where a person must never land on a bare error page.

- `/hub/oidc/oauth_login` answers 503 with a sentence while the provider is unreachable (discovery.py);
  with `?silent=1` it asks the provider for `prompt=none`: no page at the provider, only its live session.
- `/hub/oidc/oauth_callback` with `error=access_denied` (the person pressed cancel at the provider) and with
  `login_required`-like errors (a silent re-authentication found no provider session) returns to the
  branded login page with a sentence, after checking the OAuth state like any callback.
- `/hub/login` shows those sentences (`?teamhub_notice=`), and sends a person whose OIDC access token
  expired without a refresh token (methods.TeamhubOIDCAuthenticator.refresh_user marks it in a cookie)
  silently through the provider instead of showing the login page: their session continues.
"""

from __future__ import annotations

from urllib.parse import urlencode

from jupyterhub.handlers.login import LoginHandler
from jupyterhub.utils import url_path_join
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from tornado import web

REAUTH_COOKIE = "teamhub-oidc-reauth"
REAUTH_MINUTES = 10  # the marker only bridges one redirect; a stale one must not trigger later

NOTICES = {
    "cancelled": "Sign-in was cancelled.",
    "ended": "Your single sign-on session has ended. Sign in again to continue; your servers keep running.",
}
# Authorization errors (OpenID Connect Core 3.1.2.6) that mean "no live session at the provider".
SESSION_GONE = {"login_required", "interaction_required", "consent_required", "account_selection_required"}


def mark_for_reauth(handler) -> None:
    """Called from refresh_user when an expired token cannot be refreshed on a page the browser loads."""
    if handler is None or getattr(handler, "_token_authenticated", False):
        return  # API requests (the single-user server asking who someone is) cannot follow redirects
    handler.set_secure_cookie(REAUTH_COOKIE, "1", expires_days=REAUTH_MINUTES / 1440,
                              path=handler.hub.base_url, httponly=True)


class OIDCLoginHandler(OAuthLoginHandler):
    def get(self):
        discovery = self.authenticator.discovery
        if discovery is not None and not discovery.available:
            discovery.start_retrying()
            raise web.HTTPError(503, discovery.sentence)
        return super().get()

    def authorize_redirect(self, *args, extra_params=None, **kwargs):
        if self.get_argument("silent", ""):
            extra_params = {**(extra_params or {}), "prompt": "none"}
        return super().authorize_redirect(*args, extra_params=extra_params, **kwargs)


def login_page_url(handler, notice: str, next_url: str) -> str:
    query = {"teamhub_notice": notice}
    if next_url:
        query["next"] = next_url
    return url_path_join(handler.hub.base_url, "login") + "?" + urlencode(query)


class OIDCCallbackHandler(OAuthCallbackHandler):
    async def get(self):
        error = self.get_argument("error", "")
        notice = "cancelled" if error == "access_denied" else "ended" if error in SESSION_GONE else ""
        if not notice:
            return await super().get()
        self.check_state()  # a forged callback gets the usual 400, not a friendly page
        self.log.info("OIDC sign-in ended at the provider: %s", error)
        self.redirect(login_page_url(self, notice, self.get_next_url()))
        return None


class TeamhubLoginHandler(LoginHandler):
    """JupyterHub's login page plus the two cases above."""

    async def get(self):
        if self.current_user is None and self.get_secure_cookie(REAUTH_COOKIE, max_age_days=REAUTH_MINUTES / 1440):
            self.clear_cookie(REAUTH_COOKIE, path=self.hub.base_url)
            oidc = self.authenticator.methods.get("oidc")
            if oidc is not None and (oidc.discovery is None or oidc.discovery.available):
                query = {"silent": "1"}
                if self.get_argument("next", ""):
                    query["next"] = self.get_argument("next")
                self.redirect(url_path_join(self.hub.base_url, "oidc/oauth_login") + "?" + urlencode(query))
                return
        await super().get()

    def _render(self, login_error=None, username=None, **kwargs):
        if login_error is None:
            login_error = NOTICES.get(self.get_argument("teamhub_notice", ""))
        return super()._render(login_error=login_error, username=username, **kwargs)
