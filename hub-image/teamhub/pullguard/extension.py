"""The pull guard's Jupyter server extension (what and why: __init__.py)."""

from __future__ import annotations

import json
import os

from tornado import web

from . import ENV, grammar

# nbgitpuller's query fields that name a place: each must parse, or the request is refused.
PATH_FIELDS = ("targetpath", "targetPath", "urlpath", "urlPath", "subpath", "subPath")


def allowed_from_env(environ=os.environ) -> tuple:
    """The allow-list the spawner set; unset means nothing is allowed. ValueError when unreadable."""
    raw = environ.get(ENV, "")
    entries = json.loads(raw) if raw.strip() else []
    if not isinstance(entries, list):
        raise ValueError(f"{ENV} must be a JSON list of repository URLs")
    return tuple(grammar.parse_repo(e, "allowed repository") for e in entries)


def checked_arguments(arguments: dict, allowed: tuple) -> dict:
    """nbgitpuller's query (name -> [bytes]) checked and made canonical; web.HTTPError when refused."""
    def one(name):
        values = arguments.get(name) or []
        # The same value twice is harmless (JupyterHub carries a launch link's own query along after a start);
        # two different values would let nbgitpuller (the last) and this check (the first) read different ones.
        if len(set(values)) > 1:
            raise web.HTTPError(400, f"{name} is given more than once, with different values")
        return values[0].decode("utf-8", "strict") if values else None

    try:
        repo = grammar.repo_on_list(one("repo"), allowed)
        if repo is None:
            raise web.HTTPError(403, "This repository is not on this hub's list of allowed repositories "
                                     "(launchLinks.allowedRepos); nothing was pulled.")
        out = dict(arguments)
        out["repo"] = [str(repo).encode()]
        if one("branch"):
            grammar.parse_branch(one("branch"))
        for name in PATH_FIELDS:
            value = one(name)
            if value not in (None, "", "."):
                grammar.parse_open(value)
        depth = one("depth")
        if depth and not depth.isdigit():
            raise web.HTTPError(400, "depth must be a number")
        return out
    except (grammar.GrammarError, UnicodeDecodeError) as exc:
        raise web.HTTPError(400, str(exc)) from None


class Guard:
    """Mixed in before nbgitpuller's handlers: the query is judged, after the server's own authentication,
    before nbgitpuller reads it (the repository it reads is the canonical one)."""

    async def prepare(self):
        await super().prepare()
        if self._finished or self.current_user is None:
            return  # not signed in: nbgitpuller's @web.authenticated answers (login redirect, 403)
        checked = checked_arguments(self.request.query_arguments, self.settings["teamhub_pullguard_allowed"])
        self.request.query_arguments = checked
        self.request.arguments = {**self.request.arguments, **checked}


class _Refused(web.RequestHandler):
    def get(self):
        raise web.HTTPError(404)


def page_environment(nbgp):
    """nbgitpuller's templates with autoescaping: nbgitpuller renders its status page without it, so every
    request value it prints (urlpath, repo) was markup on the server's origin."""
    import jinja2

    return jinja2.Environment(loader=nbgp.jinja_env.loader, autoescape=True)


def _load_jupyter_server_extension(app):
    allowed = allowed_from_env()  # unreadable: the extension fails to load, and there is no /git-pull
    from nbgitpuller._compat import get_base_handler

    get_base_handler(app)  # nbgitpuller picks its base handler class from the app before its handlers load
    from jupyter_server.utils import url_path_join
    from nbgitpuller import handlers as nbgp

    nbgp.jinja_env = page_environment(nbgp)

    class GuardedSync(Guard, nbgp.SyncHandler):
        pass

    class GuardedUI(Guard, nbgp.UIHandler):
        pass

    web_app = app.web_app
    web_app.settings["teamhub_pullguard_allowed"] = allowed
    web_app.settings["nbapp"] = app  # what nbgitpuller's own loader sets for its handlers
    base = url_path_join(web_app.settings["base_url"], "git-pull")
    static = os.path.join(os.path.dirname(nbgp.__file__), "static")
    rules = [
        (url_path_join(base, "api"), GuardedSync),
        (base, GuardedUI),
        (url_path_join(base, "static", "(.*)"), web.StaticFileHandler, {"path": static}),
        # nbgitpuller's old addresses, each a way around the guard if nbgitpuller's own extension is on too
        (url_path_join(web_app.settings["base_url"], "git-sync"), _Refused),
        (url_path_join(web_app.settings["base_url"], "interact"), _Refused),
    ]
    # First in the router, before anything loaded earlier: even with nbgitpuller's own extension enabled
    # beside the guard (an image that forgot to disable it), these addresses reach the guard.
    router = web_app.default_router
    count = len(router.rules)
    router.add_rules(rules)
    added = router.rules[count:]
    del router.rules[count:]
    router.rules[0:0] = added
    app.log.info("teamhub pull guard: nbgitpuller allowed for %d repository prefixes", len(allowed))

