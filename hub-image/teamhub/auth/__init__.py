"""Login methods and who a logged-in person is.

`person_for(user)` is the one bridge from a JupyterHub user to the catalog's `Person`: the spawner,
the launch page and quota counting all call it. The authenticators store the groups their provider
reported (GitHub `org:team` slugs, OIDC groups) in auth_state["groups"].

`configure(c, checked)` sets up every login method of `checked.values["auth"]` and the branding.
"""

from __future__ import annotations

from ..catalog.access import Person
from .clientaddr import LOOPBACK


async def person_for(user) -> Person:
    state = await user.get_auth_state() if hasattr(user, "get_auth_state") else None
    groups = (state or {}).get("groups") or ()
    return Person(user.name, frozenset(groups), bool(getattr(user, "admin", False)))


def person_now(user) -> Person | None:
    """`person_for` without awaiting, for a person with no auth state (local accounts: no provider groups);
    None when there is one to read (GitHub, OIDC): then `person_for`."""
    if getattr(user, "encrypted_auth_state", None) is not None:
        return None
    return Person(user.name, frozenset(), bool(getattr(user, "admin", False)))


def configure(c, checked, own_proxy: str = LOOPBACK) -> None:
    """`own_proxy`: how the hub recognises its own configurable-http-proxy (teamhub/auth/clientaddr.py)."""
    from .setup import configure as _configure  # JupyterHub imports stay out of the CLI's path

    _configure(c, checked, own_proxy)


__all__ = ["configure", "person_for", "person_now"]
