"""Spawners that launch exactly what the catalog allows.

`TeamhubMixin` holds everything both modes share: the spawn-time check (`apply_user_options` ->
`catalog.access.check_request`), the clean slate, team quota, the session deadline in persisted state and
the hub-side stop at the deadline. `TeamhubKubeSpawner` turns a `Launch` into a pod and fails fast on
events that mean the pod will never start; `TeamhubLocalSpawner` runs JupyterLab as a local process
for `teamhub demo` (no CPU/memory/GPU limits there).
"""

from __future__ import annotations

import asyncio
import copy
import html
import time

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import url_path_join, wait_for_http_server
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from tornado import web
from traitlets import HasTraits, Instance

from ..auth import person_for
from ..catalog import queue
from ..catalog.access import REQUEST_FIELDS, RequestRefused, check_request
from ..catalog.placement import Launch
from ..usage import metrics
from ..usage import record as usage
from ..values.quantities import cpu_cores, format_cpu, memory_bytes
from . import failfast, launchlinks, podrefusal, refusals, sessions, stopper
from .quota import Hold
from .runtime import Runtime

LABEL_PREFIX = "teamhub.dev"
STATE_KEY = "teamhub"

# Pod Security "restricted" (the README asks namespaces to enforce it): fixed for every server. Only the
# uid/gid/fsGroup vary, per launch (resource over image over singleuser.securityContext).
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# The API server's answers when admission (Pod Security, quotas, webhooks) or validation refuses a pod.
ADMISSION_REFUSED = (403, 422)


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


class TeamhubMixin(HasTraits):  # traits declared here are configurable on the spawner classes below
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
        stage = "refused-not-allowed"  # the start-outcome metric of a refusal at each step
        try:
            request, pull = launchlinks.split_request(user_options, launchlinks.allowed_repos(rt.values))
            launch = check_request(rt.catalog, person, request)
            stage = "refused-quota"
            await rt.quota.reserve(rt.catalog, Hold(self.teamhub_key, launch.team, launch.gpu_count))
            stage = "refused-budget"
            cap = usage.budget_cap(self, launch)  # no await from here to usage.opened: starts see each other
        except RequestRefused as exc:
            metrics.outcome(stage)
            rt.quota.release(self.teamhub_key)
            exc = await usage.explain(self, exc)  # when a used-up budget returns, read off the event loop
            self.log.info("Refused start for %s: request %s: %s %s", self.teamhub_key,
                          refusals.describe_request(user_options), exc.status, exc.message)
            self._forget_options()
            self.teamhub_refused_request = dict(user_options) if isinstance(user_options, dict) else None
            raise refusals.FILTER.refused(refused(exc)) from None
        try:
            deadline = sessions.deadline_after(launch.minutes)
            capped = cap is not None and cap < deadline
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
            env.update(sessions.env_for(deadline, int((deadline - sessions.now()) // 60) if capped else launch.minutes))
            env["TEAMHUB_RESOURCE"] = launch.resource.key
            env.update(launchlinks.pullguard_env(rt.values))  # the pull guard inside the server (teamhub.pullguard)
            self.environment = env
            if pull is not None:  # a launch link's repository: nbgitpuller pulls it, then opens the file
                self.default_url = pull.default_url()
                self.teamhub_info["repo"] = pull.repo
            self.teamhub_apply_launch(launch, deadline)
            self._teamhub_started, self._teamhub_end_reason, self._teamhub_ended = False, None, False
            usage.opened(self, launch)
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
            self.teamhub.quota.restore(Hold(self.teamhub_key, info.get("team"), int(info.get("gpus") or 0)))

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

    def _teamhub_due(self, budget: bool = True) -> tuple[str, str] | None:
        """Whether the hub must stop this server now: (end reason, the sentence for the person) when its session's
        deadline passed (`budget` when a team budget capped it) or, with `budget`, its team's budget ran out."""
        if sessions.expired(self.teamhub_deadline):
            self.log.info("Session of %s reached its deadline %s: stopping", self.teamhub_key, sessions.iso(self.teamhub_deadline))
            capped = (self.teamhub_info or {}).get("budget_capped")
            return ("budget" if capped else "deadline",
                    f"This session reached its end at {sessions.iso(self.teamhub_deadline)}"
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
        # The budget: a 403 with the sentence, as a start refused by it (JupyterHub passes an HTTPError through).
        raise refused(RequestRefused(403, message)) if reason == "budget" else SpawnStopped(message)

    async def start(self):
        try:
            result = await self._teamhub_start_watched()
        except BaseException as exc:
            self._teamhub_end_reason = self._teamhub_end_reason or "failed-start"
            metrics.outcome(metrics.failure_reason(exc))
            usage.closed(self, self._teamhub_end_reason)
            raise
        self._teamhub_started = True
        metrics.outcome("started")
        if self.teamhub_launch is not None:
            metrics.START_SECONDS.labels(self.teamhub_launch.resource.key).observe(time.monotonic() - self._teamhub_applied_at)
        usage.seen(self)
        return result

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
        try:
            return await super().stop(now=now)
        finally:
            if record is not None:  # a server with a record of its start in this database
                usage.closed(self, self._teamhub_stop_reason(), record)
            self._teamhub_stopping = False
            self.teamhub.quota.release(self.teamhub_key)

    def _teamhub_stop_reason(self) -> str:
        if self._teamhub_end_reason:
            return self._teamhub_end_reason
        if stopper.by_admin(self):  # through the REST API by someone else: an admin (usage page, admin panel)
            return "admin"
        if not self._teamhub_started:
            metrics.outcome("timeout")  # JupyterHub gave up waiting (start_timeout) and stops the start
            return "failed-start"
        return "idle-cull" if stopper.by_culler(self) else "stopped"


def _cores(value):
    cores = cpu_cores(value)
    return float(cores) if cores is not None else None


def _bytes(value):
    b = memory_bytes(value)
    return int(b) if b is not None else None


class TeamhubKubeSpawner(TeamhubMixin, KubeSpawner):
    teamhub_attrs = (
        "environment", "image", "image_pull_policy", "image_pull_secrets", "cpu_guarantee", "cpu_limit",
        "mem_guarantee", "mem_limit", "extra_resource_limits", "extra_resource_guarantees", "node_selector",
        "tolerations", "volumes", "volume_mounts", "extra_labels", "extra_pod_config", "uid", "gid", "fs_gid",
        "pod_security_context", "container_security_context", "allow_privilege_escalation", "privileged",
        "default_url", "priority_class_name", "scheduler_name",
    )
    failfast_interval = 1.0
    _teamhub_admitted = False  # this start's pod passed a dry-run admission before its PVC was created
    _teamhub_pod = None  # the manifest the dry run judged, for KubeSpawner's _start to create

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._teamhub_init()

    def teamhub_apply_launch(self, launch: Launch, deadline: float) -> None:
        image = launch.image
        self.image = image.ref
        self.image_pull_policy = image.pull_policy
        secrets = [s if isinstance(s, str) else s.get("name") for s in (self.image_pull_secrets or [])]
        self.image_pull_secrets = list(dict.fromkeys(secrets + list(image.pull_secrets)))
        res = launch.resource
        self.cpu_guarantee = _cores(res.cpu_request)
        self.cpu_limit = _cores(res.cpu_limit) if res.cpu_limit is not None else None
        self.mem_guarantee = _bytes(res.memory_request)
        self.mem_limit = _bytes(res.memory_limit) if res.memory_limit is not None else None
        if launch.gpu:
            self.extra_resource_limits = {**self.extra_resource_limits, launch.gpu.resource: str(launch.gpu.count)}
        self.node_selector = {**self.node_selector, **launch.node_selector}
        self.tolerations = list(self.tolerations) + [dict(t) for t in launch.tolerations if dict(t) not in self.tolerations]
        volumes, mounts = list(self.volumes), list(self.volume_mounts)
        for vol in launch.volumes:
            name = f"teamhub-{vol.key}"
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": vol.pvc, "readOnly": vol.read_only}})
            mount = {"name": name, "mountPath": vol.mount_path, "readOnly": vol.read_only}
            if vol.sub_path:
                mount["subPath"] = vol.sub_path
            mounts.append(mount)
        self.volumes, self.volume_mounts = volumes, mounts
        labels = {f"{LABEL_PREFIX}/resource": res.key}
        if launch.team:
            labels[f"{LABEL_PREFIX}/team"] = launch.team
        if launch.accelerator:
            labels[f"{LABEL_PREFIX}/accelerator"] = launch.accelerator.key
        labels.update(queue.labels(self.teamhub.catalog, launch))  # a GPU server waits in its team's line
        self.extra_labels = {**self.extra_labels, **labels}
        self.extra_pod_config = {**self.extra_pod_config, "activeDeadlineSeconds": launch.minutes * 60}
        # the resource's rank (catalog priorityClassName): a course's GPU servers may preempt others' CPU ones
        self.priority_class_name = res.priority_class
        if res.user_scheduler and self.teamhub.user_scheduler:  # packed onto the fewest nodes (catalog userScheduler)
            self.scheduler_name = self.teamhub.user_scheduler
        user = launch.pod_user
        self.uid, self.gid, self.fs_gid = user.run_as_user, user.run_as_group, user.fs_group
        self.privileged, self.allow_privilege_escalation = False, False
        self.pod_security_context = copy.deepcopy(RESTRICTED_POD)
        self.container_security_context = copy.deepcopy(RESTRICTED_CONTAINER)
        self._teamhub_admitted, self._teamhub_pod = False, None

    # --- the API server refusing the pod ------------------------------------------------------------

    async def _teamhub_create_pod(self, pod, request_timeout, dry_run: bool = False) -> None:
        """POST the pod (or only ask admission, with dry_run); a refusal ends the spawn with a sentence
        and one WARNING line: it is a configuration problem for the admin, not a hub fault."""
        try:
            await asyncio.wait_for(
                self.api.create_namespaced_pod(self.namespace, pod, **({"dry_run": "All"} if dry_run else {})),
                request_timeout,
            )
        except ApiException as exc:
            if exc.status not in ADMISSION_REFUSED:
                raise
            reason = podrefusal.reason(exc)
            self.log.warning("The API server refused the pod of %s (HTTP %s%s): %s", self.teamhub_key, exc.status,
                             ", dry run before creating the home volume" if dry_run else "", reason)
            name = self.teamhub_launch.resource.display_name if self.teamhub_launch else "this server"
            raise SpawnStopped(podrefusal.sentence(name, reason)) from None

    async def _make_create_pvc_request(self, pvc, request_timeout):
        # KubeSpawner calls this only when the start is about to create the person's home volume (once the
        # PVC is known it is skipped), just before it creates the pod. Let admission judge the pod first
        # with a dry run (stores nothing): a refused pod must not leave a new, never-used PVC behind, and
        # deleting it afterwards would need the right to delete PVCs, which the hub deliberately lacks.
        if not self._teamhub_admitted:
            try:
                self._teamhub_pod = await super().get_pod_manifest()
                await self._teamhub_create_pod(self._teamhub_pod, request_timeout, dry_run=True)
            except TimeoutError:
                return False  # exponential_backoff tries again
            self._teamhub_admitted = True
        return await super()._make_create_pvc_request(pvc, request_timeout)

    async def get_pod_manifest(self):
        # KubeSpawner's _start asks for the manifest right after the PVC: the dry run built it already.
        pod, self._teamhub_pod = self._teamhub_pod, None
        return pod or await super().get_pod_manifest()

    async def _make_create_pod_request(self, pod, request_timeout):
        try:
            await self._teamhub_create_pod(pod, request_timeout)
            return True
        except TimeoutError:
            return False  # as KubeSpawner: exponential_backoff tries again
        except ApiException as exc:
            if exc.status != 409:
                raise
        # A pod of that name exists: KubeSpawner's own handling (it stops the old pod, then retries).
        return await super()._make_create_pod_request(pod, request_timeout)

    async def load_user_options(self):
        """KubeSpawner's profile handling is replaced by `teamhub_apply` (run before start)."""

    # --- failing fast -----------------------------------------------------------------------------

    def teamhub_context(self) -> failfast.Context:
        launch = self.teamhub_launch
        if launch is None:
            return failfast.Context(autoscaler=self.teamhub.autoscaler)
        res = launch.resource
        return failfast.Context(
            resource_name=res.display_name,
            accelerator_key=launch.accelerator.key if launch.accelerator else None,
            accelerator_name=launch.accelerator.display_name if launch.accelerator else None,
            gpu_resource=launch.gpu.resource if launch.gpu else None,
            cpu=f"{format_cpu(res.cpu_request)} CPUs",
            memory=str(res.memory_request),
            image=launch.image.ref,
            autoscaler=self.teamhub.autoscaler,
            gpu_count=launch.gpu_count,
            data_sets=tuple((v.pvc, v.key) for v in launch.volumes),
        )

    async def _teamhub_watch(self) -> failfast.Verdict:
        """Fail fast from the pod alone (failfast.classify_pod): with hundreds of servers starting at once, each
        reading the events of its pod every second would sort and scan the namespace's events every time."""
        ctx = self.teamhub_context()
        key = f"{self.namespace}/{self.pod_name}"
        while True:
            await asyncio.sleep(self.failfast_interval)
            reflector = self.pod_reflector
            verdict = failfast.classify_pod(reflector.pods.get(key) if reflector else None, ctx)
            if verdict and verdict.fatal:
                return verdict

    async def get_url(self):
        """JupyterHub asks this of a server whose poll says running when it restarted: one whose start the previous hub
        never finished has no address in the database. Adopt it: wait (up to start_timeout) for its pod to run and
        answer with the pod's address; a pod that never runs (gone, or failing as fail-fast judges) keeps the old one,
        so JupyterHub's check finds nothing answering and stops the server."""
        await self._start_watching_pods()
        key, ctx = f"{self.namespace}/{self.pod_name}", self.teamhub_context()
        deadline = time.monotonic() + self.start_timeout
        why = f"not running within {self.start_timeout} s"
        while time.monotonic() < deadline:
            pod = self.pod_reflector.pods.get(key)
            if pod is None or pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") not in ("Pending", "Running"):
                why = "gone" if pod is None else f"ending (phase {pod['status'].get('phase')})"
                break
            verdict = failfast.classify_pod(pod, ctx)
            if verdict and verdict.fatal:
                why = verdict.message
                break
            if self.is_pod_running(pod):
                return url_path_join(self._get_pod_url(pod), self.server.base_url)
            await asyncio.sleep(self.failfast_interval)
        self.log.warning("Not adopting %s: its pod %s is %s", self.teamhub_key, key, why)
        return self.server.url

    async def _start(self):
        self.teamhub_persist_state()  # before the first API write (the home PVC or the pod)
        start = asyncio.ensure_future(super()._start())
        watch = asyncio.ensure_future(self._teamhub_watch())
        try:
            done, _ = await asyncio.wait({start, watch}, return_when=asyncio.FIRST_COMPLETED)
            if start in done:
                return start.result()
            verdict = watch.result()
            start.cancel()
            self.log.warning("Stopping the spawn of %s early: %s", self.teamhub_key, verdict.message)
            stopped = SpawnStopped(verdict.message)
            stopped.teamhub_stage = verdict.stage  # for the start-outcome metric
            raise stopped
        finally:
            watch.cancel()

    async def progress(self):
        ctx = self.teamhub_context()
        yield {"progress": 5, "message": f"Requesting a server for '{ctx.resource_name}'"}
        async for event in super().progress():
            raw = event.get("raw_event")
            verdict = failfast.classify(raw, ctx) if raw else None
            if verdict:
                event = {**event, "message": verdict.message}
            yield event


class TeamhubLocalSpawner(TeamhubMixin, SimpleLocalProcessSpawner):
    """`teamhub demo`: JupyterLab as a local process. CPU, memory and GPU limits are NOT enforced."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._teamhub_init()

    async def teamhub_start_ready(self):
        """Wait here for the server to answer, as KubeSpawner waits for its pod: the start's watch (deadline, budget)
        then covers the boot, and a server the budget stopped while booting fails its start with a sentence
        instead of leaving JupyterHub waiting on a dead process (and answering the start request with a 500)."""
        ip, port = await super().teamhub_start_ready()
        up = asyncio.ensure_future(wait_for_http_server(f"http://{ip}:{port}{self.server.base_url}api", timeout=self.http_timeout))
        try:
            while not (await asyncio.wait({up}, timeout=0.5))[0]:
                code = self.proc.poll()  # the process, not self.poll(): that would clear the state holding the record
                if code is not None:  # JupyterHub would wait http_timeout for it: say so now
                    raise SpawnStopped(f"The server exited while starting (exit status {code}); the hub's log has its output.")
            up.result()
        finally:
            up.cancel()
        return ip, port

    async def progress(self):
        launch = self.teamhub_launch
        if launch is not None:
            yield {"progress": 10, "message": f"Starting '{launch.resource.display_name}' as a local process "
                                              "(demo mode: CPU, memory and GPU limits are not enforced)"}


__all__ = ["REQUEST_FIELDS", "SpawnStopped", "TeamhubKubeSpawner", "TeamhubLocalSpawner", "TeamhubMixin",
           "apply_user_options", "options_from_form", "records_held", "refused"]
