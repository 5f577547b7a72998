"""The start watch: a start ended early when its session's deadline passes or its team's budget runs out.

JupyterHub polls a server only once its start returned, so the start itself is watched here, every poll interval;
`start()` also counts the start's outcome and writes its usage record. Mixed into `TeamhubMixin` (teamhubmixin.py).
"""

from __future__ import annotations

import asyncio
import time

from traitlets import HasTraits

from .. import clock
from ..catalog.access import RequestRefused
from ..usage import metrics
from ..usage import record as usage
from . import sessions
from .spawnerrors import refused, spawn_failed


class StartWatch(HasTraits):
    def _teamhub_due(self, budget: bool = True) -> tuple[str, str] | None:
        """Whether the hub must stop this server now: (end reason, the sentence for the person) when its session's
        deadline passed (`budget` when a team budget capped it) or, with `budget`, its team's budget ran out."""
        if sessions.expired(self.teamhub_deadline):
            self.log.info("Session of %s reached its deadline %s: stopping", self.teamhub_key, clock.iso(self.teamhub_deadline))
            capped = (self.teamhub_info or {}).get("budget_capped")
            return ("budget" if capped else "deadline",
                    f"This session reached its end at {clock.iso(self.teamhub_deadline)}"
                    f"{' (where the team budget runs out)' if capped else ''} before the server was up.")
        message = usage.over_budget(self) if budget else None
        return ("budget", message) if message else None

    async def teamhub_start_ready(self):
        """The mode's start, returning once the server is up or about to be (KubeSpawner: its pod runs)."""
        return await super().start()

    async def _teamhub_start_watched(self):
        """The start, ended early when the session's deadline passes or the team's budget runs out before it is done.
        JupyterHub polls a server only after its start returns, and a start takes a while (a pod pulling its image,
        50 servers booting on one machine) while its usage record already counts: without this watch, servers
        still starting when the budget runs out would overrun it by their whole start time."""
        start = asyncio.ensure_future(self.teamhub_start_ready())
        try:
            while True:
                done, _ = await asyncio.wait({start}, timeout=self.poll_interval)
                if done:
                    return start.result()
                due = self._teamhub_due()
                if due:
                    break
        finally:
            if not start.done():
                start.cancel()
        await asyncio.wait({start})  # its cancellation done (never raises)
        reason, message = due
        self._teamhub_end_reason = reason
        await self.stop(now=True)  # nobody uses it yet: no graceful shutdown; the record ends here, with `reason`
        # The budget: a 403 with the sentence, as a start refused by it.
        if reason == "budget":
            raise refused(RequestRefused(403, message), "refused-budget")
        raise spawn_failed(message, reason="failed-deadline")

    async def start(self):
        try:
            result = await self._teamhub_start_watched()
        except BaseException:  # counted by JupyterHub's spawn metric, with the SpawnException's reason
            self._teamhub_end_reason = self._teamhub_end_reason or "failed-start"
            usage.closed(self, self._teamhub_end_reason)
            raise
        self._teamhub_started = True
        if self.teamhub_launch is not None:
            metrics.START_SECONDS.labels(self.teamhub_launch.resource.key).observe(time.monotonic() - self._teamhub_applied_at)
        usage.seen(self)
        return result
