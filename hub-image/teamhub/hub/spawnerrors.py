"""How a start that cannot succeed ends: the two errors the spawners raise (refusals and fail-fast verdicts)."""

from __future__ import annotations

import html

from tornado import web

from ..catalog.access import RequestRefused


class SpawnStopped(web.HTTPError):
    """The spawn cannot succeed; `jupyterhub_message` is what the person reads. JupyterHub puts it after
    "Spawn failed: " in the progress event's `message` (clients read that field); the progress page shows
    `html_message` instead when there is one, so the person reads the sentence alone.

    An HTTPError (500, JupyterHub's convention for a failed start that REST clients rely on) because a start
    that ends within JupyterHub's first second is re-raised to the page only as an HTTPError: any other
    exception becomes "Unhandled error starting server" and a traceback in the log."""

    def __init__(self, message: str):
        super().__init__(500, message.replace("%", "%%"))
        self.jupyterhub_message = message
        self.jupyterhub_html_message = html.escape(message)


def refused(exc: RequestRefused) -> web.HTTPError:
    """A RequestRefused as the HTTP error JupyterHub passes through to the page or API (never 500)."""
    err = web.HTTPError(exc.status, exc.message.replace("%", "%%"))
    err.jupyterhub_message = exc.message
    return err
