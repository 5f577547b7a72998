"""`/hub/usage`: the admins' view of teams, running servers and usage totals (issue 14).

Served by the hub like the launch page (its own template, no external assets), linked from the hub's
navigation for admins (page.html). What it shows comes from what the hub already keeps: the quota book
(servers and GPUs in use now), the budgets' standing (budget.overview), the spawners' teamhub_info
(resource, accelerator, deadline) and the usage records (the store's daily summaries, usage/daily.py, in a worker thread). The team rows'
budgets come from the usage ledger in memory (usage/ledger.py). The stop buttons call JupyterHub's
own REST API with the admin's session and xsrf token, so stopping needs the admin's own `admin:servers`.
`?format=csv` downloads the totals. Everyone else gets a 403 page with one sentence.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from .. import clock
from ..usage import budget, totals
from ..usage.totals import DAY, parse_time
from .runtime import Runtime

PATH = r"/usage"
TEMPLATE = "usage_admin.html"
DEFAULT_DAYS = 30
NOT_ADMIN = "This page is for the hub's administrators only."


def period_from(args: dict, now: float) -> tuple[totals.Period, tuple]:
    """The period and grouping asked for (`from`, `to`: dates or ISO times; `by`: comma-separated);
    ValueError with a sentence naming the field when one is wrong."""
    start = parse_time(args["from"], "from") if args.get("from") else now - DEFAULT_DAYS * DAY
    end = parse_time(args["to"], "to") + (DAY if len(args["to"]) == 10 else 0) if args.get("to") else now
    if end <= start:
        raise ValueError("to must be later than from")
    by = tuple(g for g in (args.get("by") or "team").split(",") if g)
    bad = [g for g in by if g not in totals.GROUPS]
    if bad or not by:
        raise ValueError(f"by {','.join(bad) or '(empty)'}: choose from {', '.join(totals.GROUPS)}")
    return totals.Period(start, end, now), by


def team_rows(rt, store, db, now: float) -> list[dict]:
    """Every team: members (people the hub knows in its group), servers and GPUs in use against the quota,
    and each budget's use in its window."""
    rows = []
    for key, team in rt.catalog.teams.items():
        group = orm.Group.find(db, key)
        use = rt.quota.usage(key)
        rows.append({"key": key, "name": team.display_name, "members": len(group.users) if group else 0,
                     "servers": use.servers, "max_servers": team.max_servers, "gpus": use.gpus, "max_gpus": team.max_gpus,
                     "budgets": budget.overview(store, team, now) if store is not None else []})
    return rows


def running_rows(handler) -> list[dict]:
    """Every server the hub runs or starts, with what teamhub knows of it."""
    out = []
    for orm_spawner in handler.db.query(orm.Spawner).filter(orm.Spawner.server_id.isnot(None)).order_by(orm.Spawner.started):
        user = handler.users[orm_spawner.user]
        spawner = user.spawners.get(orm_spawner.name)
        info = (getattr(spawner, "teamhub_info", None) or {}) if spawner is not None else {}
        name = orm_spawner.name
        api = url_path_join(handler.hub.base_url, "api/users", user.escaped_name, "servers", name) if name else \
            url_path_join(handler.hub.base_url, "api/users", user.escaped_name, "server")
        out.append({"person": user.name, "server": name, "team": info.get("team"), "resource": info.get("resource"),
                    "accelerator": info.get("accelerator"), "gpus": info.get("gpus") or 0,
                    "started": orm_spawner.started.replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
                    if orm_spawner.started else None,
                    "deadline": clock.iso(info["deadline"]) if info.get("deadline") else None,
                    "ready": bool(spawner is not None and spawner.ready), "stop_url": api})
    return out


def day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


class UsageAdminHandler(BaseHandler):
    def initialize(self, runtime: Runtime):
        self.teamhub = runtime  # the hub's runtime, handed over as configuration like the spawners' (runtime.py)

    @web.authenticated
    async def get(self):
        user = self.current_user
        if not user.admin:
            self.log.info("Usage page refused for %s: not an admin", user.name)
            self.set_status(403)
            return self.finish(await self.render_template("error.html", status_code=403, status_message="Forbidden",
                                                          message=NOT_ADMIN))
        rt, now = self.teamhub, clock.now()
        store = rt.usage
        args = {k: self.get_argument(k, "").strip() for k in ("from", "to", "by", "format")}
        error = None
        try:
            period, by = period_from(args, now)
        except ValueError as exc:
            self.log.info("Usage page for %s: %s", user.name, exc)
            error, (period, by) = str(exc), period_from({}, now)
            self.set_status(400)
        # The period's totals read many records: in a worker thread, so the hub answers everyone meanwhile.
        rows = await asyncio.get_running_loop().run_in_executor(None, store.totals, period, by) if store is not None else []
        if args["format"] == "csv" and error is None:
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="usage-{day(period.start)}-{day(period.end)}.csv"')
            return self.finish(totals.render(rows, by, "csv") + "\n")
        html = await self.render_off_loop(
            TEMPLATE, teams=team_rows(rt, store, self.db, now), running=running_rows(self), rows=rows, by=by,
            groups=totals.GROUPS, fields=totals.FIELDS, error=error, now=clock.iso(now),
            period={"from": args["from"] or day(period.start), "to": args["to"] or day(period.end - 1)},
            csv_query=f"?from={day(period.start)}&to={day(period.end - 1)}&by={','.join(by)}&format=csv")
        self.finish(html)


    async def render_off_loop(self, name: str, **ns) -> str:
        """`render_template` with the rendering in a worker thread: grouped by person, resource, accelerator and
        team a term has tens of thousands of rows, seconds of Jinja that held up every request. The namespace is
        built here, on the event loop (it reads the hub's database session, which is not for threads)."""
        namespace = {**self.template_namespace, "xsrf_token": self.xsrf_token.decode("ascii"), **ns}
        template = self.get_template(name, True)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: template.render(**namespace))


def register(c, runtime: Runtime) -> None:
    """The hook config.configure calls: the handler (config.py puts hub/templates on JupyterHub's template path)."""
    c.JupyterHub.extra_handlers.append((PATH, UsageAdminHandler, {"runtime": runtime}))
