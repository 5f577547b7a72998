"""Local accounts: bcrypt hashes from auth.local.users, checked with JupyterHub's stock login form.

Minimal on purpose (issue 4 adds GitHub, OIDC and the combined login page). The form posts a bare
name ("alice"); the hub username is always "local:alice".
"""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from traitlets import Bool, Dict

from ..passwords import verify_password

PREFIX = "local:"
# Compared against when the account does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5iqUwz.5zWqLfS7t.0qJ7wQ1o1T6mZ2"


class LocalAccountsAuthenticator(Authenticator):
    accounts = Dict(config=True, help="Local login name -> bcrypt hash (auth.local.users).")
    allow_all = Bool(True, config=True, help="Every account in `accounts` may log in.")

    def normalize_username(self, username):
        name = super().normalize_username(username)
        return name if name.startswith(PREFIX) else PREFIX + name

    async def authenticate(self, handler, data):
        raw = (data or {}).get("username") or ""
        password = (data or {}).get("password") or ""
        name = raw.strip().lower()
        if name.startswith(PREFIX):
            name = name[len(PREFIX):]
        if ":" in name or not name or not password:
            return None
        stored = self.accounts.get(name)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, verify_password, password, stored or _DUMMY_HASH)
        if not ok or stored is None:
            self.log.warning("Failed local login for %r", name)
            return None
        return {"name": PREFIX + name}
