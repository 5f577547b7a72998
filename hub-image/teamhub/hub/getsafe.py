"""No state change on GET (issue 23, finding 4).

A page on another site can make a logged-in person's browser send any GET to the hub: a top-level navigation,
an auto-submitted GET form, a link. So no GET may start a server, create a named server or spend quota:

- `/hub/launch` acts on `autostart` only for a request the browser marks `Sec-Fetch-Site: same-origin` (a link
  followed from the hub's own pages); any other request (cross-site, or a browser that does not say) gets the
  launch page with the link's choice filled in and one Start button, a POST with xsrf (launchhandler.py).
- JupyterHub's own `GET /hub/spawn?<options>` would start with the query's options, and
  `GET /hub/spawn/:user/:name` stores a named server by being viewed: `SpawnPageHandler` shows the page
  instead and stores nothing; Start on it is a POST (JupyterHub's, with its xsrf check).
- The hub's cookies, and the user servers' (JupyterHub hands its cookie options to them as
  JUPYTERHUB_COOKIE_OPTIONS), are `SameSite=Lax`: a cross-site subrequest (`<img>`, `<iframe>`, `fetch`)
  does not carry the login at all. Not Strict: a person following a course page's launch link must arrive
  logged in.
"""

from __future__ import annotations

from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from .. import compat

COOKIE_OPTIONS = {"samesite": "Lax"}
RESERVED = ("next",)  # query arguments JupyterHub reads on GET that are not start options


def same_origin(handler) -> bool:
    """Whether the browser says this request comes from the hub's own origin (Fetch Metadata)."""
    return handler.request.headers.get("Sec-Fetch-Site", "") == "same-origin"


class SpawnPageHandler(SpawnHandler):
    """JupyterHub's /hub/spawn[/:user[/:name]]: GET shows the launch page and starts or stores nothing."""

    @web.authenticated
    def get(self, user_name=None, server_name=""):
        return self._page(user_name=user_name or self.current_user.name, server_name=server_name or "")

    def render_template(self, name, sync=False, **ns):
        """The page from JupyterHub's synchronous Jinja environment (the same loader and options, without async
        support): the launch page's chain of templates (page.html, spawn.html and teamhub's overrides of both)
        renders in one pass instead of one coroutine per block. JupyterHub awaits what this returns."""
        html = super().render_template(name, sync=True, **ns)
        return html if sync else _ready(html)

    def compute_etag(self):
        """No ETag: tornado would hash every launch page (a SHA-1 over a few hundred KiB with a large catalog) for
        an answer that changes with quota figures and budgets anyway, and the page is never served from cache."""
        return None

    @needs_scope("servers")
    async def _page(self, user_name, server_name):
        user = self.current_user
        if user_name != user.name:
            user = self.find_user(user_name)
            if user is None:
                raise web.HTTPError(404, f"No such user: {user_name}")
        # Start options in the query are not acted on (JupyterHub would start with them): the page, no options.
        for key in [k for k in self.request.query_arguments if k not in RESERVED]:
            del self.request.query_arguments[key]
        if not server_name or server_name in compat.orm_spawners(user):
            # An existing server: JupyterHub's GET, which without query options shows the form (teamhub's
            # launch page is never empty) or sends a running server's person to it.
            return await compat.spawn_page(self, user_name=user_name, server_name=server_name, display_name=server_name)
        await compat.check_named_server_request(self, user, server_name, server_name)
        # A named server that does not exist yet: the page, drawn with the default server's form; the server
        # is created only by the page's Start (POST to this same address).
        self.finish(await compat.render_spawn_form(self, user, await user.spawner.get_options_form()))
        return None


async def _ready(value):
    return value


def install(c) -> None:
    """Hook for hub/config.py: SpawnPageHandler in place of JupyterHub's SpawnHandler (its routes come before
    `extra_handlers`, so the list itself is changed), and the SameSite cookie option."""
    handlers = compat.default_handlers()
    for i, (route, handler, *rest) in enumerate(handlers):
        if handler is SpawnHandler:
            handlers[i] = (route, SpawnPageHandler, *rest)
    c.JupyterHub.tornado_settings.update({"cookie_options": dict(COOKIE_OPTIONS)})
