"""`/hub/launch/stop-and-start`: the one-click answer on the launch link's "another environment is running" page
(launchhandler.py asks the question). It checks the link again, stops the running server through JupyterHub only
if it is still the one the person saw, then sends the browser to the link itself (with autostart), whose GET runs
the same start check as any start.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from jupyterhub.utils import url_path_join
from tornado import web

from ..catalog.access import RequestRefused
from .launchhandler import RUNNING_FIELDS, LaunchLinkHandler, describe, running


async def stop_and_wait(handler, user, server: str) -> None:
    """Stop through JupyterHub (proxy route, spawner, usage record, quota) and wait until it is stopped."""
    try:
        await (await handler.stop_single_user(user, server))
    except web.HTTPError:
        raise
    except Exception as exc:  # a failed stop is the hub's trouble, said in a sentence, never a 500 page
        handler.log.warning("Stop-and-start for %s: stopping %r failed: %s", user.name, server, exc)
        raise web.HTTPError(503, "Your running server could not be stopped just now; nothing new was started. "
                                 "Try again in a minute, or stop it from your home page.") from None
    if user.spawners.get(server) is not None and user.spawners[server].active:
        raise web.HTTPError(503, "Your running server is still stopping; nothing new was started. Open the link again in a minute.")


class StopAndStartHandler(LaunchLinkHandler):
    """POST /hub/launch/stop-and-start?<the link>: stop the running server, then continue as the link."""

    def link_url(self) -> str:
        """The link itself with autostart: the person chose to start it (it still shows the page when something is left to choose)."""
        query = [(k, v) for k, v in parse_qsl(self.request.query) if k != "autostart"] + [("autostart", "1")]
        return url_path_join(self.hub.base_url, "launch") + "?" + urlencode(query)

    @web.authenticated
    def get(self):
        self.redirect(self.link_url())  # only the POST stops anything

    @web.authenticated
    async def post(self):
        user = self.current_user
        server = self.server_name()
        self.require_servers_scope(user.name, server)  # it stops a server: JupyterHub's `servers` scope
        spawner = user.spawners.get(server)
        if spawner is not None and spawner.active:
            rt, info = spawner.teamhub, spawner.teamhub_info or {}
            if tuple(self.get_body_argument(k, "") for k in RUNNING_FIELDS) != running(spawner) or spawner.pending:
                self.log.info("Stop-and-start for %s: the server changed since the question; nothing stopped", user.name)
                raise web.HTTPError(409, "Your server changed since you were asked; nothing was stopped. Open the link again.")
            try:
                await self.judge(user, rt)  # a link refused now stops nothing
            except RequestRefused as exc:
                self.log.info("Stop-and-start for %s refused: %s %s", user.name, exc.status, exc.message)
                raise web.HTTPError(exc.status, exc.message.replace("%", "%%")) from None
            self.log.info("Launch link for %s: stopping %s on request, to start the link's choice",
                          user.name, describe(rt.catalog, info.get("resource"), info.get("accelerator")))
            await stop_and_wait(self, user, server)
        self.redirect(self.link_url(), status=303)  # the link's GET: the same start check, autostart or the page


def configure(c) -> None:
    """Hook for hub/config.py: the handler of the 409 page's button."""
    c.JupyterHub.extra_handlers.append((r"/launch/stop-and-start", StopAndStartHandler))
