"""One login page for every method, built on jupyterhub-multiauthenticator 0.4.0 with its gaps closed:

- the prefix of each method is fixed (`local:`, `github:`, `oidc:`, `dummy:`), never empty, never shared,
  so a person of one method can never act as a same-named person of another;
- `refresh_user` is delegated to the method that logged the person in (teams follow the provider);
- `/hub/logout` ends the hub session and then, for OIDC, the provider's session too;
- `/hub/login` shows sign-in notices and resumes an expired OIDC session silently (oidcflow.py);
- the login page is our template (`templates/login.html`), not buttons linking to themselves.
"""

from __future__ import annotations

from jupyterhub.handlers.login import LogoutHandler
from multiauthenticator import MultiAuthenticator

from .. import compat
from .oidcflow import REAUTH_COOKIE, TeamhubLoginHandler


class TeamhubLogoutHandler(LogoutHandler):
    async def get(self):
        user = self.current_user
        target = None
        if user is not None:
            sub = self.authenticator.method_for(user.name)
            if sub is not None:
                state = await user.get_auth_state() if self.authenticator.enable_auth_state else None
                target = await sub.provider_logout_url(user, state, self)
        self.clear_cookie(REAUTH_COOKIE, path=self.hub.base_url)  # no silent sign-in after a logout
        await self.default_handle_logout()
        await self.handle_logout()
        compat.forget_current_user(self)
        if target:
            self.redirect(target, permanent=False)
        else:
            self.redirect(self.settings["login_url"], permanent=False)


class TeamhubMultiAuthenticator(MultiAuthenticator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        seen = set()
        for sub in compat.sub_authenticators(self):
            method = getattr(sub, "teamhub_method", "")
            if not method or method in seen:
                raise ValueError(f"every login method needs its own non-empty username prefix, not {method!r}")
            seen.add(method)
            sub.prefix = f"{method}:"

    @property
    def methods(self) -> dict:
        return {sub.teamhub_method: sub for sub in compat.sub_authenticators(self)}

    def method_for(self, username: str):
        prefix, sep, _ = username.partition(":")
        return self.methods.get(prefix) if sep else None

    def get_custom_html(self, base_url):
        return ""  # templates/login.html renders every method

    def get_handlers(self, app):
        return [("/logout", TeamhubLogoutHandler), ("/login", TeamhubLoginHandler)] + super().get_handlers(app)

    async def refresh_user(self, user, handler=None, **kwargs):
        sub = self.method_for(user.name)
        if sub is None:
            self.log.info("%s: login method not enabled any more; sign in again", user.name)
            return False
        model = await sub.refresh_user(user, handler, **kwargs)
        if model is False and handler is not None:
            compat.mark_cookie_authenticated(handler)  # else a traceback per page load (compat.py says why)
        return model
