"""The person's servers on the home and launch pages (issue 17).

`rows(user)` is a JupyterHub template variable (JupyterHub calls it with the page's user): each active server
with its resource, accelerator and time left, from the spawner's `teamhub_info` (teamhubmixin.py). The templates
`home.html` and `spawn.html` (in hub/templates, on the hub's template path) render it with the one partial
`servers.html`; its Stop buttons call JupyterHub's own REST API (`DELETE /hub/api/users/:name/servers/:server`)
with the page's xsrf token through JupyterHub's `jhapi` client, exactly as JupyterHub's home page stops a
server, so stopping keeps one home: JupyterHub (proxy route, spawner, usage record, quota release).
The launch link's "stop it and start this" is stopandstart.py.
"""

from __future__ import annotations

from .. import clock
from . import gpuwatch
from .launchpage import duration


def time_left(info: dict, at: float | None = None) -> str:
    deadline = info.get("deadline")
    if deadline is None:
        return "no limit"
    seconds = deadline - (clock.now() if at is None else at)
    if seconds <= 0:
        return "ending now"
    return f"{duration(max(1, int(seconds // 60)))} left (ends {clock.iso(deadline)})"


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
    return gpuwatch.ended(user)


def configure(c) -> None:
    """Hook for hub/config.py (which also puts hub/templates first on the template path): the template variable."""
    c.JupyterHub.template_vars.update({"teamhub_servers": rows, "teamhub_stopped": stopped})
