"""Who an OIDC login is, beyond the name: the provider's stable `sub`, and whether groups arrived.

- The hub name comes from `auth.oidc.usernameClaim` (lower-cased), which many providers let people edit
  (`preferred_username`, `name`, often `email`). The first login records the provider's `sub` in
  auth_state; a later login under the same name with another `sub` is refused with a sentence, so a
  renamed account can never take over someone else's servers and files.
- With `usernameClaim: sub` the hub name is opaque; `DisplayNames` keeps the `name` claim for the navbar.
- A login whose claims lack `auth.oidc.groupsClaim` while teams name `oidcGroups` would silently get only
  the everyone-team: `GroupsNotice` logs one WARNING per cause and keeps it for the admins' pages.
"""

from __future__ import annotations

import logging

from tornado import web

log = logging.getLogger("JupyterHub")

SUB_MISMATCH = ("This sign-in belongs to a different account at the identity provider than the one that "
                "first used the name {name}. Ask the hub's administrators to sort it out.")


async def refuse_other_subject(handler, hub_name: str, sub: str) -> None:
    """Raise 403 when `hub_name` exists with another recorded `sub`."""
    user = handler.find_user(hub_name) if handler is not None else None
    if user is None:
        return
    state = await user.get_auth_state() or {}
    known = state.get("sub")
    if known and sub != known:
        log.warning("Refused OIDC sign-in as %s: provider subject %r differs from the recorded %r", hub_name, sub, known)
        raise web.HTTPError(403, SUB_MISMATCH.format(name=hub_name))


class GroupsNotice:
    """What admins should know about the groups claim. Shared, through template_vars, with page.html."""

    def __init__(self):
        self.messages: list[str] = []

    def __deepcopy__(self, memo):  # traitlets config deep-copies values; this one is shared on purpose
        return self

    def missing(self, hub_name: str, claim: str, scope: str, requested: list, offered: list | None, teams: list) -> None:
        if scope and scope not in requested:
            why = (f"the provider does not offer the {scope!r} scope, so it needs a mapper that puts {claim!r} "
                   "into the userinfo or ID token")
        elif scope:
            why = (f"the hub requested the {scope!r} scope; the provider needs that scope (or a mapper) to "
                   f"release {claim!r} to this client")
        else:
            why = f"auth.oidc.groupsScope is empty, so the provider needs a mapper that always sends {claim!r}"
        message = (f"OIDC logins carry no {claim!r} claim although teams name oidcGroups "
                   f"({', '.join(teams)}): {why}.")
        if message not in self.messages:
            self.messages.append(message)
            log.warning("%s (first seen for %s; offered scopes: %s)", message, hub_name,
                        " ".join(offered) if offered else "not listed")


class DisplayNames(dict):
    """hub name -> display name, filled at login and refresh (so within auth.refreshSeconds of a restart);
    shared with page.html through template_vars."""

    def __deepcopy__(self, memo):
        return self
