"""A GPU server waiting in its team's line (issue 26): the spawner's side of Kueue.

Kueue holds a queued pod with its scheduling gate `kueue.x-k8s.io/admission` until the team's quota (or the
pool) has room, then removes the gate in one update. The time before that is not the server's:
  - not the start's: JupyterHub gives a start `start_timeout` in all, so a queued start gets
    `queue.maxWaitMinutes` more (`Line.timeout`), and this module ends it with a sentence when the wait
    itself passes `queue.maxWaitMinutes`, or when the admitted pod is not up within the usual `start_timeout`;
  - not the session's: the deadline counts from admission (before it, the latest it could be);
  - not the budget's or usage's: the usage record opens at admission, and the budget is checked again then.
The spawner calls `Line.observe` with its pod at every fail-fast tick; `admitted(spawner, line)` runs once.

The place in line, for the progress page (`with_place`): Kueue's visibility API (pendingworkloads of the team's
LocalQueue, read with the hub's Role: `get` on `localqueues/pendingworkloads` of the team LocalQueues only), and
how many of the team's GPUs of that kind are in use (the hub's own pod reflector). When the visibility API does
not answer (not installed, down, forbidden) the page says "Waiting for a GPU" without a number, never an error.

Metrics: `teamhub_queue_wait_seconds` (histogram, observed at admission) and `teamhub_queued` (gauge: servers
in line now), both by team and accelerator kind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from prometheus_client import Gauge, Histogram

from .. import clock, compat
from ..catalog import queue
from ..catalog.access import RequestRefused, access_of
from ..catalog.placement import build_launch
from ..usage import record as usage
from . import sessions

GATE = "kueue.x-k8s.io/admission"
LABELS = ("team", "accelerator")
WAIT_SECONDS = Histogram("teamhub_queue_wait_seconds", "Time a GPU server waited in its team's queue until Kueue admitted it",
                         LABELS, buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf")))
QUEUED = Gauge("teamhub_queued", "GPU servers waiting in their team's queue now", LABELS)
EXPORTED = ("teamhub_queue_wait_seconds_bucket", "teamhub_queue_wait_seconds_sum", "teamhub_queue_wait_seconds_count",
            "teamhub_queued")
log = logging.getLogger("JupyterHub")
VISIBILITY = "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{namespace}/localqueues/{name}/pendingworkloads"
PLACE_EVERY = 2.0  # seconds between two looks at the place in line while a progress page is open
_pending_cache: dict = {}  # (namespace, LocalQueue) -> (monotonic time, items or None): one read serves every page


def queued(catalog, launch) -> bool:
    """Whether this launch waits in a team's line (its pod carries the queue label)."""
    return bool(queue.labels(catalog, launch))


def gated(pod: dict | None) -> bool:
    """Kueue has not admitted this pod yet."""
    return bool(pod) and any(g.get("name") == GATE for g in pod.get("spec", {}).get("schedulingGates") or [])


def _created(pod: dict) -> float | None:
    stamp = (pod.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


class Line:
    """One start's wait: entered when the start began (or, adopted after a hub restart, when its pod was created),
    left at admission. `observe` answers with the sentence that ends the start, or None. Times are the hub's clock
    (teamhub.clock: the test clock moves a wait past `queue.maxWaitMinutes` without waiting)."""

    def __init__(self, team: str, kind: str, kind_name: str, max_wait: float, start_timeout: float,
                 entered: float | None = None):
        self.team, self.kind, self.kind_name = team, kind, kind_name
        self.max_wait, self.start_timeout = max_wait, start_timeout
        self.entered = clock.now() if entered is None else entered
        self.admitted_at: float | None = None
        self.left = False
        self._counted = False  # its pod is gated in line now (the `teamhub_queued` gauge counts it)

    @classmethod
    def for_launch(cls, catalog, launch, start_timeout: float, entered: float | None = None) -> Line | None:
        if not queued(catalog, launch):
            return None
        return cls(launch.team, launch.accelerator.key, launch.accelerator.display_name,
                   catalog.queue.max_wait_minutes * 60, start_timeout, entered)

    @staticmethod
    def timeout(catalog, start_timeout: float) -> float:
        """JupyterHub's whole-start bound for a queued start: the wait plus the usual start."""
        return start_timeout + catalog.queue.max_wait_minutes * 60

    @property
    def waiting(self) -> bool:
        return self.admitted_at is None and not self.left

    @property
    def in_line(self) -> bool:
        """Its pod exists and Kueue holds it."""
        return self._counted

    def _count(self, on: bool) -> None:
        if on != self._counted:
            QUEUED.labels(self.team, self.kind).inc(1 if on else -1)
            self._counted = on

    def observe(self, pod: dict | None, now: float | None = None) -> str | None:
        """The pod as the reflector has it now. Returns the sentence that ends the start, or None."""
        now = clock.now() if now is None else now
        if self.admitted_at is None:
            if pod is not None and gated(pod):
                self._count(True)
                if now - self.entered > self.max_wait:
                    self.leave()
                    return (f"No {self.kind_name} GPU came free for team {self.team} within "
                            f"{self.max_wait / 60:g} minutes (queue.maxWaitMinutes), so this start gave up its "
                            "place in line. Try again later, or choose an environment without a GPU.")
                return None
            if pod is None:
                return None  # not created yet (or already gone: KubeSpawner's own wait says so)
            self.admitted_at = now
            self._count(False)
            WAIT_SECONDS.labels(self.team, self.kind).observe(max(now - self.entered, 0.0))
            return None
        if now - self.admitted_at > self.start_timeout and not _running(pod):
            return (f"Kueue gave this server a {self.kind_name} GPU, but it did not start within "
                    f"{self.start_timeout:g} seconds after that.")
        return None

    def leave(self) -> None:
        """The start ended (stopped, failed, or given up): no longer in line."""
        self.left = True
        self._count(False)


def leave(line: Line | None) -> None:
    if line is not None:
        line.leave()


def _running(pod: dict | None) -> bool:
    return bool(pod) and (pod.get("status") or {}).get("phase") == "Running"


def check(spawner, line: Line | None, pod: dict | None) -> str | None:
    """The spawner's hook at every fail-fast tick: the sentence that ends the start, or None. Runs `admitted`
    once, when Kueue lets the pod go."""
    if line is None:
        return None
    before = line.admitted_at
    message = line.observe(pod)
    if message is None and before is None and line.admitted_at is not None:
        message = admitted(spawner, line)
    return message


def admitted(spawner, line: Line) -> str | None:
    """Kueue admitted the server: its session, budget and usage start now. Returns the sentence that ends the
    start when the team's budget ran out while it waited, else None."""
    info = spawner.teamhub_info
    if info is None:
        return None
    launch = spawner.teamhub_launch or relaunch(spawner)
    waited = int(max((line.admitted_at or clock.now()) - line.entered, 0))
    deadline = sessions.deadline_after(int(info.get("minutes") or 0))
    cap = None
    if launch is not None:
        try:
            cap = usage.budget_cap(spawner, launch)
        except RequestRefused as exc:
            return exc.message
    capped = cap is not None and cap < deadline
    info.update(deadline=cap if capped else deadline, budget_capped=capped, queued_seconds=waited)
    if launch is not None and usage.record_of(spawner) is None:
        usage.opened(spawner, launch)
    spawner.teamhub_persist_state()
    spawner.log.info("Kueue admitted %s after %s s in line (team %s, %s)", spawner.teamhub_key, waited, line.team, line.kind)
    return None


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def waiting_message(line: Line, place: int | None, used: int, most: int) -> str:
    """What the progress page says while the server waits; `place` None when Kueue cannot tell."""
    team = f"team {line.team}: {used} of {most} in use"
    if place is None:
        return f"Waiting for a GPU: {line.kind_name} ({team})."
    return f"You are {ordinal(place)} in line for {line.kind_name} ({team})."


async def pending(api_client, namespace: str, local_queue: str) -> list | None:
    """The LocalQueue's pending workloads from Kueue's visibility API, or None when it does not answer; read at most
    once per PLACE_EVERY for all pages."""
    key = (namespace, local_queue)
    cached = _pending_cache.get(key)
    if cached and time.monotonic() - cached[0] < PLACE_EVERY:
        return cached[1]
    items = None
    try:
        answer = await asyncio.wait_for(api_client.call_api(
            VISIBILITY.format(namespace=namespace, name=local_queue), "GET", response_types_map={200: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True, _request_timeout=5), 6)
        items = list((answer or {}).get("items") or [])
    except Exception as exc:  # not served, forbidden, down: the page says "waiting" without a number
        log.debug("Kueue's visibility API did not answer for %s/%s: %s", namespace, local_queue, exc)
    _pending_cache[key] = (time.monotonic(), items)
    return items


def place_of(items: list | None, pod_uid: str | None) -> int | None:
    """1 for the first in the team's line (Kueue counts from 0), or None when unknown."""
    for item in items or ():
        owners = (item.get("metadata") or {}).get("ownerReferences") or []
        if pod_uid and any(o.get("uid") == pod_uid for o in owners):
            position = item.get("positionInLocalQueue")
            return int(position) + 1 if position is not None else None
    return None


def gpus_in_use(pods, team: str, kind: str, resource: str) -> int:
    """GPUs of `kind` that `team`'s admitted servers hold, from the pods the hub watches."""
    used = 0
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get("teamhub.dev/team") != team or labels.get("teamhub.dev/accelerator") != kind or gated(pod):
            continue
        if pod.get("metadata", {}).get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in pod.get("spec", {}).get("containers") or []:
            used += int(((container.get("resources") or {}).get("limits") or {}).get(resource, 0) or 0)
    return used


async def status(spawner, line: Line) -> str:
    """The waiting sentence for this spawner's line now."""
    catalog = spawner.teamhub.catalog
    reflector = compat.pod_reflector(spawner)
    pod = reflector.pods.get(f"{spawner.namespace}/{spawner.pod_name}") if reflector else None
    items = await pending(spawner.api.api_client, spawner.namespace, queue.local_queue(line.team))
    kind = catalog.accelerators.get(line.kind)
    used = gpus_in_use(reflector.pods.values() if reflector else (), line.team, line.kind, kind.gpu.resource if kind else "")
    most = queue.team_share(catalog, line.team, line.kind)[1] if kind and line.team in catalog.teams else 0
    return waiting_message(line, place_of(items, (pod or {}).get("metadata", {}).get("uid")), used, most)


async def with_place(spawner, events):
    """The spawner's progress events, with the place in line between them while its pod waits (only when it
    changes)."""
    line = spawner.teamhub_line
    iterator = events.__aiter__()
    upcoming = asyncio.ensure_future(iterator.__anext__())
    said = None
    try:
        while True:
            timeout = PLACE_EVERY if line is not None and line.waiting else None
            done, _ = await asyncio.wait({upcoming}, timeout=timeout)
            if upcoming in done:
                try:
                    event = upcoming.result()
                except StopAsyncIteration:
                    return
                yield event
                upcoming = asyncio.ensure_future(iterator.__anext__())
            if line is not None and line.in_line:
                message = await status(spawner, line)
                if message != said:
                    said = message
                    yield {"progress": 20, "message": message}
    finally:
        upcoming.cancel()


def busy_starts(users, me=None) -> int:
    """Starts under way that are not waiting in line (JupyterHub's pending spawns, minus the queued ones)."""
    return sum(1 for user in users for s in user.spawners.values()
               if s is not me and s.pending == "spawn" and not getattr(getattr(s, "teamhub_line", None), "in_line", False))


def throttle(spawner) -> None:
    """sessions.concurrentStarts with the queue on. JupyterHub's own concurrent_spawn_limit counts every pending
    start, so a line of people waiting for a GPU would turn everyone after them into "429 Too many users" (config.py
    switches it off with the queue); this counts the same starts without those in line. RequestRefused(429)."""
    rt = spawner.teamhub
    if not rt.catalog.queue.enabled:
        return
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return
    limit = rt.values["sessions"]["concurrentStarts"]
    busy = busy_starts(JupyterHub.instance().users.values(), spawner)
    if busy >= limit:
        raise RequestRefused(429, f"{busy} servers are starting right now, as many as the hub starts at once. "
                                  "Try again in a minute (servers waiting in line for a GPU do not count).")


def outlook(users) -> dict:
    """(team, accelerator kind) -> [GPUs its admitted servers hold, servers waiting in its line], from the hub's own
    spawners (the launch page asks at every view: no API call)."""
    seen: dict = {}
    for user in users:
        for s in user.spawners.values():
            info = getattr(s, "teamhub_info", None) or {}
            if not s.active or not info.get("accelerator") or not info.get("team"):
                continue
            counts = seen.setdefault((info["team"], info["accelerator"]), [0, 0])
            if getattr(getattr(s, "teamhub_line", None), "in_line", False):
                counts[1] += 1
            else:
                counts[0] += info.get("gpus") or 0
    return seen


def launch_note(catalog, team: str | None, kind: str, seen: dict) -> str:
    """What the launch page says under an accelerator choice that would wait in line now; "" when it would not."""
    acc = catalog.accelerators.get(kind)
    if not catalog.queue.enabled or acc is None or team is None or team not in catalog.teams:
        return ""
    need = acc.gpu.count
    used, waiting = seen.get((team, kind), (0, 0))
    pool_used = sum(v[0] for (_, k), v in seen.items() if k == kind)
    most = queue.team_share(catalog, team, kind)[1]
    pool = acc.capacity or 0
    if waiting == 0 and used + need <= most and pool_used + need <= pool:
        return ""
    if used + need > most:
        why = f"team {catalog.teams[team].display_name} may use {most} {acc.display_name} GPUs and {used} are in use"
    elif pool_used + need > pool:
        why = f"all {pool} {acc.display_name} GPUs are in use"
    else:
        why = f"{waiting} {'person is' if waiting == 1 else 'people are'} already waiting for one"
    return f"{why[0].upper()}{why[1:]}; you would be {ordinal(waiting + 1)} in line."


def note_for(catalog):
    """The launch page's `queue_note(team, kind)` for this view, or None with the queue off (nothing to look up)."""
    if not catalog.queue.enabled:
        return None
    from jupyterhub.app import JupyterHub

    seen = outlook(JupyterHub.instance().users.values()) if JupyterHub.initialized() else {}
    return lambda team, kind: launch_note(catalog, team, kind, seen)


KUEUE_DOWN = ("The GPU queue is not answering right now, so no GPU server can start (servers without a GPU can). "
              "Try again in a few minutes; if it lasts, tell an admin that Kueue is down.")


def kueue_down(exc) -> str | None:
    """The sentence for a pod create that Kueue's webhook could not judge (it fails closed: the API server answers
    500 "failed calling webhook" naming Kueue's mpod/vpod hooks), else None."""
    body = str(getattr(exc, "body", "") or "")
    if getattr(exc, "status", None) == 500 and "failed calling webhook" in body and ("mpod.kb.io" in body or "vpod.kb.io" in body):
        return KUEUE_DOWN
    return None


def relaunch(spawner):
    """The launch of a server adopted after a hub restart (only its persisted state is left), for its usage record;
    None when the catalog no longer has it."""
    info = spawner.teamhub_info or {}
    catalog = spawner.teamhub.catalog
    resource = catalog.resources.get(info.get("resource") or "")
    kind = info.get("accelerator")
    if resource is None or (kind and kind not in catalog.accelerators):
        return None
    teams = (info["team"],) if info.get("team") in catalog.teams else ()
    return build_launch(catalog, resource, catalog.accelerators[kind] if kind else None, int(info.get("minutes") or 0),
                        access_of(catalog, teams))


ADOPTED_STOP_WAIT = 60.0  # seconds Stop waits for JupyterHub's own check to stop a server adopted in line


def adopting_in_line(spawner) -> bool:
    """Whether this server is one JupyterHub is still checking after a hub restart (pending "check": the spawner's
    `get_url` waits for its pod) while the pod waits in line."""
    line = getattr(spawner, "teamhub_line", None)
    return spawner.pending == "check" and line is not None and line.waiting


async def leave_adopted(spawner, timeout: float = ADOPTED_STOP_WAIT) -> bool:
    """Stop for a server adopted in line (see `adopting_in_line`). JupyterHub refuses to stop a server whose check
    is pending (`stop_single_user`: RuntimeError, HTTP 500), and the check lasts until Kueue admits the pod. So the
    spawner's `get_url` is told to give up (`teamhub_leave_asked`) with a short `http_timeout`: JupyterHub's check
    then finds nothing answering and stops the server itself, its own way (pod deleted, server cleared). Returns
    True once that stop is done (nothing more to stop), False when this server is not such a case."""
    if not adopting_in_line(spawner):
        return False
    saved = spawner.http_timeout
    spawner.http_timeout, spawner.teamhub_leave_asked = 1, True  # an Integer trait: the shortest
    deadline = time.monotonic() + timeout
    try:
        while spawner.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        spawner.http_timeout, spawner.teamhub_leave_asked = saved, False
    return not spawner.pending and spawner.server is None


def adopted(spawner, pod: dict) -> Line | None:
    """The line of a server whose pod the previous hub left waiting (None when the pod is not queued)."""
    info = spawner.teamhub_info or {}
    catalog = spawner.teamhub.catalog
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if not catalog.queue.enabled or queue.QUEUE_LABEL not in labels or not info.get("accelerator"):
        return None
    kind = catalog.accelerators.get(info["accelerator"])
    name = kind.display_name if kind else info["accelerator"]
    created = _created(pod)
    line = Line(info.get("team") or "", info["accelerator"], name, catalog.queue.max_wait_minutes * 60,
                spawner.start_timeout, entered=None if created is None else created + clock.now() - time.time())
    if not gated(pod) and usage.record_of(spawner) is not None:
        line.admitted_at = line.entered  # admitted before the restart: nothing more to do
    return line


__all__ = ["EXPORTED", "GATE", "Line", "QUEUED", "WAIT_SECONDS", "admitted", "adopted", "adopting_in_line", "leave_adopted", "busy_starts", "check", "gated", "gpus_in_use", "kueue_down",
           "launch_note", "leave", "note_for", "ordinal", "outlook", "pending", "place_of", "queued", "relaunch", "status", "throttle", "waiting_message", "with_place"]
