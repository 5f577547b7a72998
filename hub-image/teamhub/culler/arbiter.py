"""The culler's `cull_arbiter_hook` (jupyterhub-idle-culler 2.0: called as `hook(inactive=, inactive_limit=,
server=)` for every ready server, may return an awaitable; True culls).

A server with a GPU rule (settings.rule_for) is judged by its GPU use alone, whatever the browser does: culled
once idle for the rule's window, kept while it computes (the hub's session deadline still ends it). Everything
else, and a GPU server whose use is unknown, follows today's rule: `inactive` against sessions.idleCullMinutes.

The rule needs the server's pod and what it was launched as, which are in the spawner's state: the culler's
role therefore has `admin:server_state` exactly when some GPU rule exists (hub/config.py).

Prometheus not answering is an outage: ONE warning when it starts, one info line when it ends, and meanwhile
today's rule for everyone, so an outage never culls anyone early and never crashes the culler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from . import gpu
from .settings import rule_for

STATE_KEY = "teamhub"  # hub/teamhubmixin.py STATE_KEY: the launch (resource, accelerator) in the spawner's state


class Arbiter:
    def __init__(self, settings: dict, log: logging.Logger | None = None, environ=os.environ):
        self.settings = settings
        self.log = log or logging.getLogger("IdleCuller")
        self.environ = environ
        self.outage: str | None = None  # why Prometheus is not answering, while it is not

    async def __call__(self, *, inactive, inactive_limit, server, **kwargs) -> bool:
        state = server.get("state") or {}
        info = state.get(STATE_KEY) or {}
        rule = rule_for(self.settings, info.get("resource"), info.get("accelerator"))
        pod = state.get("pod_name")
        name = server.get("full_name") or server.get("name") or pod
        if rule is not None and pod:
            verdict = await self.verdict(pod, state.get("namespace") or self.settings.get("namespace"), rule)
            if verdict.known:
                if verdict.cull:
                    self.log.info("GPU of %s idle for %s (below %g%%): culling it, whatever its browser does",
                                  name, gpu.minutes_text(verdict.idle_seconds), rule["belowPercent"])
                elif self.activity_rule(inactive, inactive_limit):
                    self.log.info("Keeping %s: no activity for %s, but its GPU computes", name,
                                  gpu.minutes_text(inactive.total_seconds()))
                return verdict.cull
        return self.activity_rule(inactive, inactive_limit)

    async def verdict(self, pod: str, namespace: str | None, rule: dict) -> gpu.Verdict:
        exporter = self.settings["exporters"][rule["exporter"]]
        try:
            points, step = await asyncio.to_thread(gpu.fetch, self.settings["prometheus"], exporter, namespace,
                                                   rule["seconds"], time.time(), pod)
        except gpu.PrometheusUnavailable as exc:
            if self.outage is None:
                self.outage = str(exc)
                self.log.warning("GPU use unknown: Prometheus at %s does not answer (%s); every server follows the "
                                 "activity rule until it does", self.settings["prometheus"]["url"], exc)
            return gpu.UNKNOWN
        if self.outage is not None:
            self.log.info("Prometheus at %s answers again: GPU rules apply", self.settings["prometheus"]["url"])
            self.outage = None
        return gpu.judge(points.get(pod, []), time.time(), rule, step)

    def activity_rule(self, inactive, inactive_limit) -> bool:
        """Today's rule (the culler's default arbiter). On the culler's own clock, like JupyterHub's activity
        times: adding the tests' clock offset made every server idle at once when a test moved the hub's clock."""
        if self.settings["idleSeconds"] <= 0:
            return False  # sessions.idleCullMinutes: 0, the culler runs only for GPU rules
        return inactive.total_seconds() >= inactive_limit
