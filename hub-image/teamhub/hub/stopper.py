"""Who asked for a stop, so a server an admin stopped ends its usage record as `admin` (issue 14), and one the
idle culler stopped as `idle-cull` (issue 24: from the requester, not guessed from `last_activity`).

JupyterHub does not tell the spawner who asked: every stop through its REST API (the usage page's Stop
button, JupyterHub's own admin panel, `DELETE /hub/api/users/:name[/server[s/:server]]`) and the logout
stop go through `BaseHandler.stop_single_user`, which runs the stop in a new asyncio task. `install()` wraps
that one method to put the requester in a context variable around it; the task inherits the variable, so the
spawner's `stop()` reads it (`by_admin`) however long the stop takes, while stops the hub decides itself
(deadline, budget, a poll) never see it. The idle culler asks with its service's token: `by_culler`.

The same wrapper lets a person waiting in a GPU line after a hub restart press Stop: JupyterHub refuses the stop of
a server it is still checking (HTTP 500), so hub/queueing.py `leave_adopted` ends that check first.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools

from . import queueing

CULLER = "idle-culler"  # the culler's JupyterHub service (hub/config.py configure_culler)
_ASKED_BY: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("teamhub_stop_asked_by", default=None)


def install() -> None:
    from jupyterhub.handlers.base import BaseHandler

    original = BaseHandler.stop_single_user
    if getattr(original, "teamhub_wrapped", False):
        return

    @functools.wraps(original)
    async def stop_single_user(self, user, server_name=""):
        asker = getattr(self, "_jupyterhub_user", None)  # current_user, without its RuntimeError when unset
        token = _ASKED_BY.set((getattr(asker, "kind", ""), getattr(asker, "name", "")) if asker is not None else None)
        try:
            spawner = (getattr(user, "spawners", None) or {}).get(server_name)  # .get: never makes one
            if spawner is not None and await queueing.leave_adopted(spawner):
                return _done()  # waiting in line after a hub restart: JupyterHub's own check has stopped it
            return await original(self, user, server_name)
        finally:
            _ASKED_BY.reset(token)

    stop_single_user.teamhub_wrapped = True
    BaseHandler.stop_single_user = stop_single_user


def _done() -> asyncio.Future:
    """What `stop_single_user` returns when nothing is left to stop: a finished stop."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def by_admin(spawner) -> bool:
    """Whether this stop was asked for by a person other than the server's owner (only someone holding
    `admin:servers` or `servers` on it gets that far: an admin). Services, such as the idle culler, are not."""
    asker = _ASKED_BY.get()
    return asker is not None and asker[0] == "user" and asker[1] != spawner.user.name


def by_culler(spawner) -> bool:
    """Whether this stop was asked for by the idle culler's service."""
    return _ASKED_BY.get() == ("service", CULLER)
