"""`TeamhubKubeSpawner`: a `Launch` as a pod (restricted security settings, labels, limits), failing fast on
pod states that mean it will never start, and adopting a pod whose start a previous hub never finished. The dry
run before the home volume is podadmission.py."""

from __future__ import annotations

import asyncio
import copy
import time

from jupyterhub.utils import url_path_join
from kubespawner import KubeSpawner

from .. import compat
from ..catalog import queue
from ..catalog.placement import Launch
from ..values.quantities import cpu_cores, format_cpu, memory_bytes
from . import failfast, queueing
from .podadmission import DryRunAdmission
from .spawnerrors import spawn_failed
from .teamhubmixin import TeamhubMixin

LABEL_PREFIX = "teamhub.dev"
# A fail-fast verdict's stage -> the reason in JupyterHub's spawn metric (spawnerrors.REASONS) and the HTTP status:
# no room for the pod now is 503 (the cluster is full or lacks the GPU: not the hub failing), the rest 500.
FAILFAST_REASONS = {"scheduling": ("failed-unschedulable", 503), "pulling": ("failed-image", 500)}

# Pod Security "restricted" (docs/chart.md asks namespaces to enforce it): fixed for every server. Only the
# uid/gid/fsGroup vary, per launch (resource over image over singleuser.securityContext).
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _cores(value):
    cores = cpu_cores(value)
    return float(cores) if cores is not None else None


def _bytes(value):
    b = memory_bytes(value)
    return int(b) if b is not None else None


class TeamhubKubeSpawner(TeamhubMixin, DryRunAdmission, KubeSpawner):
    teamhub_attrs = (
        "environment", "image", "image_pull_policy", "image_pull_secrets", "cpu_guarantee", "cpu_limit",
        "mem_guarantee", "mem_limit", "extra_resource_limits", "extra_resource_guarantees", "node_selector",
        "tolerations", "volumes", "volume_mounts", "extra_labels", "extra_pod_config", "uid", "gid", "fs_gid",
        "pod_security_context", "container_security_context", "allow_privilege_escalation", "privileged",
        "default_url", "priority_class_name", "scheduler_name", "start_timeout",
    )
    failfast_interval = 1.0
    teamhub_line = None  # queueing.Line: this start's wait in its team's GPU queue
    teamhub_leave_asked = False  # Stop pressed while a server adopted after a restart waits in line (queueing.leave_adopted)

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
        self.teamhub_line = queueing.Line.for_launch(self.teamhub.catalog, launch, self.start_timeout)
        if self.teamhub_line is not None:  # JupyterHub's bound for the whole start: the wait plus the usual start
            self.start_timeout = int(queueing.Line.timeout(self.teamhub.catalog, self.start_timeout))

    def teamhub_queued(self, launch: Launch) -> bool:
        return queueing.queued(self.teamhub.catalog, launch)
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
            dra=launch.devices is not None,
            device_total=launch.accelerator.capacity if launch.accelerator else None,
        )

    async def _teamhub_watch(self) -> failfast.Verdict:
        """Fail fast from the pod alone (failfast.classify_pod): with hundreds of servers starting at once, each
        reading the events of its pod every second would sort and scan the namespace's events every time."""
        ctx = self.teamhub_context()
        key = f"{self.namespace}/{self.pod_name}"
        while True:
            await asyncio.sleep(self.failfast_interval)
            reflector = compat.pod_reflector(self)
            pod = reflector.pods.get(key) if reflector else None
            verdict = failfast.classify_pod(pod, ctx)
            if verdict and verdict.fatal:
                return verdict
            message = queueing.check(self, self.teamhub_line, pod)  # waited too long in line, or admitted
            if message:
                return failfast.Verdict(True, message, "queue")

    async def get_url(self):
        """JupyterHub asks this of a server whose poll says running when it restarted: one whose start the previous hub
        never finished has no address in the database. Adopt it: wait (up to start_timeout) for its pod to run and
        answer with the pod's address; a pod that never runs (gone, or failing as fail-fast judges) keeps the old one,
        so JupyterHub's check finds nothing answering and stops the server."""
        await compat.start_watching_pods(self)
        key, ctx = f"{self.namespace}/{self.pod_name}", self.teamhub_context()
        deadline = time.monotonic() + self.start_timeout
        why = f"not running within {self.start_timeout} s"
        line = None
        while time.monotonic() < deadline:
            pod = compat.pod_reflector(self).pods.get(key)
            if pod is None or pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") not in ("Pending", "Running"):
                why = "gone" if pod is None else f"ending (phase {pod['status'].get('phase')})"
                break
            line = self.teamhub_line = line or queueing.adopted(self, pod)  # in line when the hub restarted: keeps its place
            if line is not None and line.waiting and self.teamhub_leave_asked:
                why = "left the line: Stop was pressed"  # JupyterHub's check stops it (queueing.leave_adopted)
                break
            message = queueing.check(self, line, pod)
            if message:
                why = message
                break
            if line is not None and line.waiting:
                deadline = time.monotonic() + self.start_timeout  # the wait is bounded by the line itself
            verdict = failfast.classify_pod(pod, ctx)
            if verdict and verdict.fatal:
                why = verdict.message
                break
            if self.is_pod_running(pod):
                queueing.leave(line)
                return url_path_join(compat.pod_url(self, pod), self.server.base_url)
            await asyncio.sleep(self.failfast_interval)
        queueing.leave(line)
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
            reason, status = FAILFAST_REASONS.get(verdict.stage, ("failed", 500))
            raise spawn_failed(verdict.message, reason=reason, status_code=status)
        finally:
            watch.cancel()
            queueing.leave(self.teamhub_line)  # up, failed or stopped: out of line

    async def progress(self):
        ctx = self.teamhub_context()
        yield {"progress": 5, "message": f"Requesting a server for '{ctx.resource_name}'"}
        async for event in queueing.with_place(self, super().progress()):  # the place in line while it waits
            raw = event.get("raw_event")
            verdict = failfast.classify(raw, ctx) if raw else None
            if verdict:
                event = {**event, "message": verdict.message}
            yield event
