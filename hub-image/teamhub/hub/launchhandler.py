"""`/hub/launch`: where a launch link lands (format and checks: launchlinks.py).

After login (JupyterHub's own redirect keeps the link), the link is judged like a start: a refused link shows
the person's launch page with the sentence and nothing from the link (status 400/403, one INFO line). A
permitted link shows the launch page with its choice preselected and its repository as hidden fields; the
person confirms with Start (the form posts to this URL: JupyterHub's SpawnHandler.post, so the start runs the
same check again). `autostart=1` starts at once when nothing needs choosing, and only for a request from the
hub's own pages (`Sec-Fetch-Site: same-origin`, getsafe.py): a link followed from another site shows the page
with one Start, and viewing `server=NAME` stores no named server. A person whose server already runs another
environment is asked what to do (stop it, or open the link in a named server) and never given the wrong one
silently.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from markupsafe import Markup, escape
from tornado import web

from .. import compat
from ..auth import person_for
from ..catalog.access import REQUEST_FIELDS, RequestRefused, check_request
from ..pullguard import grammar
from . import launchlinks
from .getsafe import SpawnPageHandler, same_origin

QUESTION = """<div class="th-launch" id="teamhub-running" role="alert">
<p>Your server runs <strong>{running}</strong>. This link asks for <strong>{wanted}</strong>.</p>
<p>Nothing was changed. Choose one:</p>
<ul>
<li><a href="{server_url}">Keep it and go to your running server</a></li>
{replace}{named}</ul></div>"""


def hidden_fields(link: dict) -> Markup:
    """The link's repository, branch and file as hidden form fields, with a note saying what Start pulls."""
    fields = "".join(f'<input type="hidden" name="{k}" value="{escape(link[k])}">' for k in launchlinks.PULL_FIELDS if link.get(k))
    if not link.get("repo"):
        return Markup(fields)
    opens = f", then opens <code>{escape(link['open'])}</code>" if link.get("open") else ""
    return Markup(f'{fields}<p class="th-note" id="teamhub-link-pull">Start pulls <code>{escape(link["repo"])}</code> '
                  f'(branch <code>{escape(link.get("branch") or launchlinks.DEFAULT_BRANCH)}</code>) into your home folder{opens}.</p>')


def describe(catalog, resource_key, accelerator_key) -> str:
    res = catalog.resources.get(resource_key)
    name = res.display_name if res else str(resource_key)
    acc = catalog.accelerators.get(accelerator_key) if accelerator_key else None
    return f"{name} on {acc.display_name}" if acc else name


PULL_INTO_RUNNING = """<div class="th-launch" id="teamhub-pull-running">
<p>Your server runs <strong>{running}</strong>. This link pulls <code>{repo}</code> into your home folder{opens}.</p>
<ul><li><a id="teamhub-pull-open" href="{url}">Pull it and open it</a></li><li><a href="{server_url}">Go to your server without pulling</a></li></ul>
</div>"""


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
    """The 409 page's button: POST (with xsrf) to /hub/launch/stop-and-start (stopandstart.py) with the link's own query."""
    action = url_path_join(handler.hub.base_url, "launch", "stop-and-start") + f"?{handler.request.query}"
    return (f'<li><form method="post" id="teamhub-stop-and-start" action="{escape(action)}" style="display:inline">'
            f'<input type="hidden" name="_xsrf" value="{escape(handler.xsrf_token.decode("ascii"))}">'
            f'{running_fields(spawner)}'
            f'<button type="submit" class="btn btn-sm btn-danger">Stop {escape(running)} and start {escape(wanted)}</button>'
            "</form></li>\n")


class LaunchLinkHandler(SpawnPageHandler):
    """GET judges the link; POST is SpawnHandler's (the launch page's Start), for the link's server."""

    def server_name(self) -> str:
        try:
            name = grammar.parse_server(self.get_argument("server", ""))
        except grammar.GrammarError as exc:
            raise web.HTTPError(400, str(exc)) from None
        if name and not self.allow_named_servers:
            raise web.HTTPError(400, "This hub does not offer named servers.")
        return name

    @needs_scope("servers")
    def require_servers_scope(self, user_name: str, server_name: str) -> None:
        """JupyterHub's `servers` scope on this server, as JupyterHub's own spawn handlers require it (403 without):
        a session whose roles do not let it start or stop servers gets no further here than on /hub/spawn."""

    async def judge(self, user, rt) -> tuple:
        """This request's link, checked like a start against the hub's runtime `rt` (a spawner's `teamhub`):
        (link, autostart, launch, pull, choose); RequestRefused."""
        link = {k: self.get_argument(k, "") for k in launchlinks.LINK_FIELDS}
        link = {k: v for k, v in link.items() if v}
        autostart = link.pop("autostart", "") in ("1", "true", "yes")
        request = {k: link[k] for k in REQUEST_FIELDS if k in link}
        _, pull = launchlinks.split_request(link, launchlinks.allowed_repos(rt.values))
        choose = launchlinks.needs_choice(rt.catalog, request)
        res = rt.catalog.resources.get(request.get("resource") or "")
        # Still to choose an accelerator: judge everything else with the resource's first one.
        probe = {**request, "accelerator": res.accelerators[0]} if choose and res is not None and res.accelerators else request
        return link, autostart, check_request(rt.catalog, await person_for(user), probe), pull, choose

    @web.authenticated
    def post(self):
        return super().post(None, self.server_name())

    @web.authenticated
    async def get(self):
        user = self.current_user
        server = self.server_name()
        self.require_servers_scope(user.name, server)
        if server:
            await compat.check_named_server_request(self, user, server, server)  # JupyterHub's limit: maxPerPerson
        # Viewing a link stores nothing: a named server that does not exist yet is drawn with the default
        # server's page and created by Start (the POST).
        exists = not server or server in compat.orm_spawners(user)
        spawner = user.get_or_create_spawner(server, server, replace_failed=True) if exists else user.spawner
        rt = spawner.teamhub  # the hub's runtime is the spawners' configuration (hub/runtime.py)
        try:
            link, autostart, launch, pull, choose = await self.judge(user, rt)
        except RequestRefused as exc:
            self.log.info("Refused launch link for %s: %s %s", user.name, exc.status, exc.message)
            self.set_status(exc.status)
            return self.finish(await compat.render_spawn_form(self, user, await spawner.get_options_form(), message=exc.message))
        if exists and spawner.active:
            return await self._running(user, spawner, launch, pull, choose, server)
        if autostart and not choose and same_origin(self):
            spawner = user.get_or_create_spawner(server, server, replace_failed=True)
            pending = url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name, server)
            self.log.info("Launch link for %s: autostart %s", user.name, launch.resource.key)
            return await compat.wrap_spawn_single_user(self, user, server, server, spawner, pending, link)
        if autostart and not choose:
            self.log.info("Launch link for %s from another site: showing the page instead of autostart", user.name)
        spawner.teamhub_link = link  # read once by launchpage.options_form
        self.finish(await compat.render_spawn_form(self, user, await spawner.get_options_form()))

    async def _running(self, user, spawner, launch, pull, choose, server):
        rt = spawner.teamhub
        info = spawner.teamhub_info or {}
        wanted_acc = launch.accelerator.key if launch.accelerator and not choose else info.get("accelerator")
        same = info.get("resource") == launch.resource.key and info.get("accelerator") == wanted_acc
        if same and spawner.ready:
            # The same environment: nbgitpuller pulls into a running server too; from another site only
            # after the person's click (a GET from elsewhere changes nothing in their home).
            url = user.server_url(server)
            if pull and not same_origin(self):
                opens = f", then opens <code>{escape(pull.open)}</code>" if pull.open else ""
                html = PULL_INTO_RUNNING.format(
                    running=escape(describe(rt.catalog, info.get("resource"), info.get("accelerator"))),
                    repo=escape(pull.repo), opens=opens, url=escape(url_path_join(url, pull.default_url())),
                    server_url=escape(url))
                return self.finish(await self.render_template("error.html", status_code=200, status_message="Pull into your server?",
                                                              message_html=Markup(html)))
            self.redirect(url_path_join(url, pull.default_url()) if pull else url)
            return None
        if same:
            self.redirect(url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name, server))
            return None
        self.log.info("Launch link for %s asks for %s while %s runs: asking", user.name, launch.resource.key, info.get("resource"))
        named = ""
        if self.allow_named_servers:
            name = re.sub(r"[^a-z0-9-]", "-", launch.resource.key.lower())[:40]
            query = urlencode([(k, v) for k, v in parse_qsl(self.request.query) if k != "server"] + [("server", name)])
            beside = url_path_join(self.hub.base_url, "launch") + f"?{query}"
            named = f'<li><a id="teamhub-open-named" href="{escape(beside)}">Open this link in a second server beside it</a></li>\n'
        running = describe(rt.catalog, info.get("resource"), info.get("accelerator"))
        wanted = describe(rt.catalog, launch.resource.key, wanted_acc)
        html = QUESTION.format(running=escape(running), wanted=escape(wanted), server_url=escape(user.server_url(server)),
                               replace=stop_and_start_form(self, spawner, running, wanted), named=named)
        self.set_status(409)
        self.finish(await self.render_template("error.html", status_code=409, status_message="Another environment is running",
                                         message_html=Markup(html)))
        return None
