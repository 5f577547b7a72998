"""Login methods and who a logged-in person is.

`person_for(user)` is the one bridge from a JupyterHub user to the catalog's `Person`: the spawner,
the launch page and quota counting all call it. The authenticators store the groups their provider
reported (GitHub `org:team` slugs, OIDC groups) in auth_state["groups"].
"""

from __future__ import annotations

from ..resolution import Person


def configure(c, checked) -> None:
    """Set the hub's authenticator from `auth` in the values. Admins come from `auth.admins`.

    Issue 4 extends this (MultiAuthenticator with GitHub and OIDC); the hub only calls
    `configure(c, checked)` and `person_for(user)`.
    """
    from .local import LocalAccountsAuthenticator

    auth = checked.values["auth"]
    local = auth.get("local") or {}
    c.JupyterHub.authenticator_class = LocalAccountsAuthenticator
    c.LocalAccountsAuthenticator.accounts = {
        name: user["passwordHash"] for name, user in (local.get("users") or {}).items()
    } if local.get("enabled") else {}
    c.Authenticator.admin_users = set(auth.get("admins") or ())


async def person_for(user) -> Person:
    state = await user.get_auth_state() if hasattr(user, "get_auth_state") else None
    groups = (state or {}).get("groups") or ()
    return Person(user.name, frozenset(groups), bool(getattr(user, "admin", False)))
