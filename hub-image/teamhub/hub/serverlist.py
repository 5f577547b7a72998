"""The person's servers on the home and launch pages (issue 17), and the launch link's "stop it and start this".

`rows(user)` is a JupyterHub template variable (JupyterHub calls it with the page's user): each active server
with its resource, accelerator and time left, from the spawner's `teamhub_info` (spawners.py). The templates
`home.html` and `spawn.html` (in hub/templates, on the hub's template path) render it with the one partial
`servers.html`; its Stop buttons call JupyterHub's own REST API (`DELETE /hub/api/users/:name/servers/:server`)
with the page's xsrf token through JupyterHub's `jhapi` client, exactly as JupyterHub's home page stops a
server, so stopping keeps one home: JupyterHub (proxy route, spawner, usage record, quota release).

`/hub/launch/stop-and-start` is the one-click answer on the launch link's "another environment is running"
page (launchhandler.py): it checks the link again, stops the running server through JupyterHub only if it
is still the one the person saw, then sends the browser to the link itself (with autostart), whose GET runs
the same start check as any start.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from jupyterhub.utils import url_path_join
from markupsafe import Markup, escape
from tornado import web

from ..catalog.access import RequestRefused
from . import gpuwatch, sessions
from .launchhandler import LaunchLinkHandler, describe
from .launchpage import duration


def time_left(info: dict, at: float | None = None) -> str:
    deadline = info.get("deadline")
    if deadline is None:
        return "no limit"
    seconds = deadline - (sessions.now() if at is None else at)
    if seconds <= 0:
        return "ending now"
    return f"{duration(max(1, int(seconds // 60)))} left (ends {sessions.iso(deadline)})"


def row(catalog, spawner, at: float | None = None) -> dict:
    """One line of the list, every text already decided here (the template only places it)."""
    info = spawner.teamhub_info or {}
    res = catalog.resources.get(info.get("resource") or "")
    acc = catalog.accelerators.get(info.get("accelerator") or "")
    pending = spawner.pending
    return {
        "name": spawner.name,
        "label": spawner.name or "Default server",
        "resource": res.display_name if res else (info.get("resource") or "starting"),
        "accelerator": acc.display_name if acc else "none",
        "time_left": {"spawn": "starting", "stop": "stopping"}.get(pending) or time_left(info, at),
        "stoppable": pending != "stop",  # JupyterHub refuses a second stop while one is pending
        "ready": bool(spawner.ready),
        "url": spawner.user.server_url(spawner.name),
        "notice": gpuwatch.notice(spawner) if pending is None else "",  # its GPU is about to be taken back
    }


def rows(user) -> list[dict]:
    """`teamhub_servers` in the templates: the user's active servers, default first."""
    spawners = getattr(user, "spawners", None)
    if not spawners:
        return []  # logged out, or a service
    return [row(s.teamhub.catalog, s) for _, s in sorted(spawners.items()) if s.active]  # teamhub: the hub's runtime


def stopped(user) -> list[str]:
    """`teamhub_stopped` in the templates: why the person's servers were stopped lately (hub/gpuwatch.py)."""
    spawners = getattr(user, "spawners", None) or {}
    return [text for _, s in sorted(spawners.items()) if (text := gpuwatch.ended(s))]


RUNNING_FIELDS = ("running_resource", "running_accelerator", "running_started")


def running(spawner) -> tuple:
    """What runs in this server, as the stop-and-start form carries it: a server that changed since the person
    was asked (another start, another tab) is never stopped on that click."""
    info = spawner.teamhub_info or {}
    orm = spawner.orm_spawner
    return (info.get("resource") or "", info.get("accelerator") or "", orm.started.isoformat() if orm and orm.started else "")


def running_fields(spawner) -> Markup:
    return Markup("".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in zip(RUNNING_FIELDS, running(spawner), strict=True)))


def stop_and_start_form(handler, spawner, running: str, wanted: str) -> str:
    """The 409 page's button: POST (with xsrf) to /hub/launch/stop-and-start with the link's own query."""
    action = url_path_join(handler.hub.base_url, "launch", "stop-and-start") + f"?{handler.request.query}"
    return (f'<li><form method="post" id="teamhub-stop-and-start" action="{escape(action)}" style="display:inline">'
            f'<input type="hidden" name="_xsrf" value="{escape(handler.xsrf_token.decode("ascii"))}">'
            f'{running_fields(spawner)}'
            f'<button type="submit" class="btn btn-sm btn-danger">Stop {escape(running)} and start {escape(wanted)}</button>'
            "</form></li>\n")


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
    """Hook for hub/config.py (which also puts hub/templates first on the template path): the template
    variable and the stop-and-start handler."""
    c.JupyterHub.template_vars.update({"teamhub_servers": rows, "teamhub_stopped": stopped})
    c.JupyterHub.extra_handlers.append((r"/launch/stop-and-start", StopAndStartHandler))
