"""The hub's side of GPU rules (issue 28): a person is told before their GPU is taken back, and a server the
culler stopped for its GPU ends as `gpu-idle`.

Every `cullEvery` seconds (the culler's own interval) the hub reads GPU use from the same Prometheus, with the
same judgement (teamhub/culler/gpu.py), for its running servers that have a GPU rule: one query per exporter
for the whole namespace. The verdicts live in memory only: after a hub restart the first refresh rebuilds them
(the culler, which decides, keeps no state at all).

- `notice(spawner)`: "Your GPU has been idle for 25 min; this server stops in 5 min unless it computes", on the
  home and launch pages (hub/serverlist.py) in the rule's last `warnMinutes`.
- `stop_reason(spawner)`: a stop asked by the culler's service is `gpu-idle` when the server's GPU use was
  known at the last refresh (the culler then judges it by its GPU alone), else `idle-cull` (today's rule);
  `look_before_stop(spawner)` looks once more first when the hub knew nothing (just after an outage).
- `ended(user)`: why the person's servers stopped, for their pages afterwards.

The hub logs a Prometheus outage at INFO: the one WARNING per outage is the culler's, which acts on it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..culler import gpu
from ..culler.settings import rule_for

log = logging.getLogger("JupyterHub")
ENDED_SENTENCES = {
    "gpu-idle": "its GPU computed nothing for {window}",
    "idle-cull": "nobody used it for a while",
}
ENDED_SHOWN_SECONDS = 24 * 3600


class GpuWatch:
    def __init__(self, settings: dict):
        self.settings = settings
        self.verdicts: dict[str, gpu.Verdict] = {}  # spawner key (user/server) -> the last refresh's verdict
        self.down: str | None = None

    def rule(self, spawner) -> dict | None:
        info = getattr(spawner, "teamhub_info", None) or {}
        return rule_for(self.settings, info.get("resource"), info.get("accelerator"))

    async def refresh(self, spawners) -> None:
        """Judge every running server with a GPU rule; one range query per exporter (over the longest window)."""
        watched = [(s, r) for s in spawners if s.active and not s.pending and (r := self.rule(s)) is not None]
        by_exporter: dict = {}
        for s, r in watched:
            by_exporter.setdefault(r["exporter"], []).append((s, r))
        # A server being stopped keeps its last verdict: its stop's end reason is decided when the stop ends. Kept
        # as they are when this refresh ends: a stop's own look (`look_before_stop`) may land meanwhile.
        stopping = {s.teamhub_key for s in spawners if s.pending == "stop"}
        verdicts: dict = {}
        now = time.time()
        try:
            for name, items in by_exporter.items():
                window = max(r["seconds"] for _, r in items)
                points, step = await asyncio.to_thread(gpu.fetch, self.settings["prometheus"], self.settings["exporters"][name],
                                                       self.settings.get("namespace"), window, now)
                for s, r in items:
                    verdicts[s.teamhub_key] = gpu.judge(points.get(getattr(s, "pod_name", ""), []), now, r, step)
        except gpu.PrometheusUnavailable as exc:
            if self.down is None:
                log.info("teamhub: GPU idle warnings paused: Prometheus does not answer (%s)", exc)
            self.down = str(exc)
            verdicts = {}
        else:
            self.down = None
        self.verdicts = {**{k: v for k, v in self.verdicts.items() if k in stopping}, **verdicts}

    async def look(self, spawner, rule: dict) -> gpu.Verdict:
        """One pod's verdict now (UNKNOWN when Prometheus does not answer)."""
        pod, now = getattr(spawner, "pod_name", None), time.time()
        try:
            points, step = await asyncio.to_thread(gpu.fetch, self.settings["prometheus"], self.settings["exporters"][rule["exporter"]],
                                                   self.settings.get("namespace"), rule["seconds"], now, pod)
        except gpu.PrometheusUnavailable:
            return gpu.UNKNOWN
        return gpu.judge(points.get(pod or "", []), now, rule, step)

    def verdict(self, spawner) -> gpu.Verdict:
        return self.verdicts.get(getattr(spawner, "teamhub_key", None), gpu.UNKNOWN)


_watch: GpuWatch | None = None


def current() -> GpuWatch | None:
    return _watch


def notice(spawner) -> str:
    """The warning for a running server whose GPU stop is near, or ""."""
    watch = _watch
    if watch is None:
        return ""
    verdict = watch.verdict(spawner)
    return gpu.warning_text(verdict) if verdict.warning or verdict.cull else ""


def stop_reason(spawner) -> str:
    """The end reason of a stop the culler's service asked for."""
    watch = _watch
    if watch is None or watch.rule(spawner) is None:
        return "idle-cull"
    verdict = watch.verdict(spawner)
    # The culler judged it by its GPU when the hub's last look (at most two rounds old) had it near its window.
    near = verdict.idle_seconds + 2 * watch.settings["cullEvery"] + gpu.step_for(verdict.window) >= verdict.window
    return "gpu-idle" if verdict.known and near else "idle-cull"


async def look_before_stop(spawner) -> None:
    """Before a stop the culler asked for, of a server the hub has no verdict on: look now, for that pod.

    The culler and the hub each look every `cullEvery`. When Prometheus answers again after an outage and the
    culler's round comes first, it stops idle GPUs at once, while the hub's last look was still the outage's:
    without this look those stops would end as `idle-cull`. (`stop_reason` reads the verdict when the stop ends.)"""
    watch = _watch
    if watch is None or (rule := watch.rule(spawner)) is None or watch.verdict(spawner).known:
        return
    verdict = await watch.look(spawner, rule)
    if verdict.known:
        watch.verdicts[spawner.teamhub_key] = verdict


# Why servers stopped lately, by person and server name. Not on the spawner: JupyterHub drops a stopped server's
# Spawner object (`User.stop` pops it), and the owner's next page gets a fresh one. Memory only, like the verdicts.
_ENDS: dict[str, dict[str, tuple]] = {}


def remember_end(spawner, reason: str) -> None:
    """Kept (in memory) so its owner's pages can say why the server stopped."""
    window = ""
    if reason == "gpu-idle" and _watch is not None and (rule := _watch.rule(spawner)) is not None:
        window = gpu.minutes_text(rule["seconds"])
    now = time.time()
    for person in list(_ENDS):  # forget what is no longer shown
        _ENDS[person] = {k: v for k, v in _ENDS[person].items() if now - v[1] <= ENDED_SHOWN_SECONDS}
        if not _ENDS[person]:
            del _ENDS[person]
    _ENDS.setdefault(spawner.user.name, {})[spawner.name] = (reason, now, window)


def ended(user, now: float | None = None) -> list[str]:
    """'Your server stopped at 14:05 UTC: its GPU computed nothing for 30 min.' for each recent culler stop of
    the person's servers that do not run again, by server name."""
    out = []
    for name, (reason, at, window) in sorted(_ENDS.get(getattr(user, "name", None), {}).items()):
        spawner = (getattr(user, "spawners", None) or {}).get(name)
        if spawner is not None and spawner.active:
            continue
        if reason not in ENDED_SENTENCES or (now or time.time()) - at > ENDED_SHOWN_SECONDS:
            continue
        label = f"Your server {name!r}" if name else "Your server"
        when = time.strftime("%H:%M UTC", time.gmtime(at))
        out.append(f"{label} was stopped at {when}: {ENDED_SENTENCES[reason].format(window=window)}.")
    return out


def install(rt, settings: dict | None) -> None:
    """Start the refresh loop once JupyterHub runs, when some server has a GPU rule (hub/config.py)."""
    global _watch
    from jupyterhub.app import JupyterHub

    _watch = None
    if settings is None or settings.get("prometheus") is None or not JupyterHub.initialized():
        return  # no GPU rule, or configured outside a running hub (tests, tools)
    app = JupyterHub.instance()
    watch = _watch = GpuWatch(settings)

    async def loop():
        while True:
            try:
                await watch.refresh([s for user in app.users.values() for s in user.spawners.values()])
            except Exception:  # never fatal: warnings pause until the next round
                log.exception("teamhub: reading GPU use failed")
            await asyncio.sleep(settings["cullEvery"])

    started = getattr(app, "_start_future", None)
    if started is not None:
        started.add_done_callback(lambda _: asyncio.ensure_future(loop()))
