"""What both spawners share (`TeamhubMixin`): the spawn-time check (`apply_user_options` ->
`catalog.access.check_request`), the clean slate, team quota, the session deadline in persisted state and the
hub-side stop at the deadline; the start itself is watched by `StartWatch` (startwatch.py). The Kubernetes
spawner is podspawner.py, the demo's local one localspawner.py.
"""

from __future__ import annotations

import copy
import time

from traitlets import Instance

from .. import clock
from ..auth import person_for
from ..catalog.access import RequestRefused, check_request
from ..catalog.model import gpu_number
from ..catalog.placement import Launch
from ..usage import record as usage
from . import gpuwatch, launchlinks, queueing, refusals, sessions, stopper
from .quota import Hold
from .runtime import Runtime
from .spawnerrors import refused
from .startwatch import StartWatch

STATE_KEY = "teamhub"


def records_held(states) -> set[int]:
    """The usage records that persisted spawner states hold (at hub start the other open records are closed)."""
    records = ((state.get(STATE_KEY) or {}).get(usage.KEY) for state in states)
    return {int(r) for r in records if r is not None}


def options_from_form(formdata: dict) -> dict:
    """Form fields -> user_options, the same shape as the REST API's: one value per field."""
    options = {}
    for key, values in formdata.items():
        if key.startswith("_") or key.endswith("_file"):
            continue
        values = [v for v in (values if isinstance(values, list) else [values]) if v != ""]
        if not values:
            continue
        options[key] = values[0] if len(values) == 1 else values  # several values: check_request refuses
    return options


async def apply_user_options(spawner, user_options):
    """`c.Spawner.apply_user_options`: JupyterHub calls this before every start, form or REST."""
    await spawner.teamhub_apply(user_options)


class TeamhubMixin(StartWatch):  # traits declared here are configurable on the spawner classes
    teamhub_attrs: tuple = ("environment", "default_url")
    teamhub_runtime = Instance(Runtime, allow_none=True, config=True,
                               help="The hub's checked values, mode and quota book; set by teamhub.hub.config.configure.")

    @property
    def teamhub(self) -> Runtime:
        """The runtime; a hub configured without it is a bug, so it fails loudly instead of skipping the quota."""
        if self.teamhub_runtime is None:
            raise RuntimeError(f"{type(self).__name__}.teamhub_runtime is not set: configure the hub with "
                               "teamhub.hub.config.configure()")
        return self.teamhub_runtime

    def _teamhub_init(self):
        self._teamhub_base = {a: copy.deepcopy(getattr(self, a)) for a in self.teamhub_attrs}
        self.teamhub_launch: Launch | None = None
        self.teamhub_info: dict | None = None  # persisted: deadline, resource, accelerator, team, gpus
        self._teamhub_refused = False
        self._teamhub_stopping = False  # inside stop(): poll() reports the real process/pod state
        self._teamhub_started = False  # start() returned: a later stop is not a failed start
        self._teamhub_end_reason: str | None = None  # why the next stop happens, when the hub itself decides
        self._teamhub_ended = False  # poll() ended the server (deadline, budget): JupyterHub's stop has nothing to do
        self._teamhub_applied_at = time.monotonic()  # the checked start began (start-duration metric)
        # What a refused start asked for: only to show the launch page again with the person's own choice
        # (never used to start anything; user_options is cleared, see _forget_options).
        self.teamhub_refused_request: dict | None = None

    @property
    def teamhub_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    @property
    def teamhub_deadline(self) -> float | None:
        return (self.teamhub_info or {}).get("deadline")

    def teamhub_reset(self) -> None:
        """Clean slate: every attribute a launch may set goes back to its configured value."""
        for attr, value in self._teamhub_base.items():
            setattr(self, attr, copy.deepcopy(value))
        self.teamhub_launch = None
        self.teamhub_info = None

    async def teamhub_apply(self, user_options) -> Launch:
        rt = self.teamhub
        self.teamhub_reset()
        rt.quota.release(self.teamhub_key)
        self._teamhub_refused = True
        person = await person_for(self.user)
        stage = "refused-not-allowed"  # the reason of a refusal at each step (JupyterHub's spawn metric)
        try:
            queueing.throttle(self)  # concurrentStarts without the starts waiting in line (the queue on)
            request, pull = launchlinks.split_request(user_options, launchlinks.allowed_repos(rt.values))
            launch = check_request(rt.catalog, person, request)
            stage = "refused-quota"
            await rt.quota.reserve(rt.catalog, Hold(self.teamhub_key, launch.team, launch.gpu_count))
            stage = "refused-budget"
            # One instant for the check, the deadline and the record's start: the record says what the check saw
            # (tests recompute every accepted check from the records). No await from here to usage.opened:
            # simultaneous starts see each other.
            now = clock.now()
            cap = usage.budget_cap(self, launch, now)
        except RequestRefused as exc:
            rt.quota.release(self.teamhub_key)
            exc = await usage.explain(self, exc)  # when a used-up budget returns, read off the event loop
            self.log.info("Refused start for %s: request %s: %s %s", self.teamhub_key,
                          refusals.describe_request(user_options), exc.status, exc.message)
            self._forget_options()
            self.teamhub_refused_request = dict(user_options) if isinstance(user_options, dict) else None
            raise refused(exc, stage) from None
        try:
            # A GPU server in line: its session, budget and usage start at admission (hub/queueing.py); until then its
            # deadline is the latest it could be.
            queued = self.teamhub_queued(launch)
            deadline = sessions.deadline_after(launch.minutes + (rt.catalog.queue.max_wait_minutes if queued else 0), now)
            capped = not queued and cap is not None and cap < deadline
            deadline = cap if capped else deadline
            self.teamhub_launch = launch
            self.teamhub_info = {
                "deadline": deadline,
                "minutes": launch.minutes,
                "resource": launch.resource.key,
                "accelerator": launch.accelerator.key if launch.accelerator else None,
                "team": launch.team,
                "gpus": launch.gpu_count,
                "budget_capped": capped,
            }
            env = dict(self.environment)
            env.update(launch.pod_env)
            env.update(sessions.env_for(deadline, int((deadline - now) // 60) if capped else launch.minutes))
            env["TEAMHUB_RESOURCE"] = launch.resource.key
            env.update(launchlinks.pullguard_env(rt.values))  # the pull guard inside the server (teamhub.pullguard)
            self.environment = env
            if pull is not None:  # a launch link's repository: nbgitpuller pulls it, then opens the file
                self.default_url = pull.default_url()
                self.teamhub_info["repo"] = pull.repo
            self.teamhub_apply_launch(launch, deadline)
            self._teamhub_started, self._teamhub_end_reason, self._teamhub_ended = False, None, False
            if not queued:
                usage.opened(self, launch, now)
            self._teamhub_applied_at = time.monotonic()
        except Exception:
            rt.quota.release(self.teamhub_key)
            self.teamhub_reset()
            raise
        self._teamhub_refused = False
        self.teamhub_refused_request = None
        self.log.info("Starting %s for %s (team %s, %s minutes)", launch.resource.key, self.teamhub_key, launch.team, launch.minutes)
        return launch

    def _forget_options(self) -> None:
        """JupyterHub saved the refused options as this server's defaults; a later start without options
        (REST with no body) must not silently reuse them."""
        self.user_options = {}
        orm = getattr(self, "orm_spawner", None)
        if orm is not None:
            orm.user_options = {}

    def teamhub_apply_launch(self, launch: Launch, deadline: float) -> None:
        """Mode-specific: turn the launch into spawner settings."""

    def teamhub_queued(self, launch: Launch) -> bool:
        """Mode-specific: whether this launch waits in Kueue's line (never in demo mode)."""
        return False

    # --- persisted state: the deadline survives a hub restart -----------------------------------

    def get_state(self):
        state = super().get_state()
        if self.teamhub_info:
            state[STATE_KEY] = dict(self.teamhub_info)
        return state

    def teamhub_persist_state(self) -> None:
        """Commit the state (deadline, quota hold, usage record, pod name) now. JupyterHub saves it only once start()
        returns: a hub killed in between came back with no state, a closed record and a server nobody tracked
        (issue 24). Called before a start's first write to the cluster, so whatever it creates is in the database."""
        orm = getattr(self, "orm_spawner", None)
        if orm is not None:
            orm.state = self.get_state()
            self.db.commit()

    def load_state(self, state):
        super().load_state(state)
        info = (state or {}).get(STATE_KEY)
        if info:
            self.teamhub_info = dict(info)
            self._teamhub_refused = False
            self._teamhub_started = True  # it was running before the hub restarted
            self.teamhub.quota.restore(Hold(self.teamhub_key, info.get("team"), gpu_number(info.get("gpus") or 0)))

    def clear_state(self):
        super().clear_state()
        self.teamhub_info = None
        self.teamhub_launch = None
        self.teamhub.quota.release(self.teamhub_key)

    async def poll(self):
        """At the deadline, end the server for real (process gone, pod deleted) before reporting it stopped.
        Reporting "stopped" alone is not enough: JupyterHub's stop() polls first, and LocalProcessSpawner
        sends no signal to a server that poll() calls stopped. This runs from the hub's periodic poll and
        from its start-up check of servers that ran before a restart (also when the deadline passed while
        the hub was down)."""
        if self._teamhub_ended:
            return 0  # ended at its deadline or budget; JupyterHub's own stop follows (and does nothing)
        due = None if self._teamhub_stopping else self._teamhub_due(budget=self._teamhub_started)
        if due:
            self._teamhub_end_reason = due[0]
            await self.stop()
            self._teamhub_ended = True
            return 0
        record = usage.record_of(self)  # before a poll that finds the server gone clears the state holding it
        status = await super().poll()
        if not self._teamhub_stopping and self._teamhub_started:
            if status is None:
                usage.seen(self, record)
            else:
                usage.lost(self, record)
        return status

    async def stop(self, now=False):
        if self._teamhub_refused:
            return  # the start was refused before anything was created
        if self._teamhub_ended:
            # poll() ended it at its deadline (pod deleted, record closed) and reported it stopped; this is
            # JupyterHub's stop that follows: deleting the pod a second time would be a second API call for nothing.
            self._teamhub_ended = False
            self.teamhub.quota.release(self.teamhub_key)
            return
        self._teamhub_stopping = True
        record = usage.record_of(self)  # before the spawner's own stop clears the state holding it
        if record is not None and stopper.by_culler(self):
            await gpuwatch.look_before_stop(self)  # while the pod's series are fresh: the end reason (hub/gpuwatch.py)
        try:
            return await super().stop(now=now)
        finally:
            if record is not None:  # a server with a record of its start in this database
                reason = self._teamhub_stop_reason()
                gpuwatch.remember_end(self, reason)  # its owner's pages say why (hub/gpuwatch.py)
                usage.closed(self, reason, record)
            self._teamhub_stopping = False
            self.teamhub.quota.release(self.teamhub_key)

    def _teamhub_stop_reason(self) -> str:
        if self._teamhub_end_reason:
            return self._teamhub_end_reason
        if stopper.by_admin(self):  # through the REST API by someone else: an admin (usage page, admin panel)
            return "admin"
        if not self._teamhub_started:  # JupyterHub gave up waiting (start_timeout; its metric says `timeout`)
            return "failed-start"
        return gpuwatch.stop_reason(self) if stopper.by_culler(self) else "stopped"  # gpu-idle or idle-cull
