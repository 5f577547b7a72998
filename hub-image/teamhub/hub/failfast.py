"""Read Kubernetes pod events while a server starts: is it progressing, or will it never start?

Pure functions of event (and pod) dicts as the Kubernetes API returns them, so they can be tested with
recorded events. While a server starts, the spawner asks `classify_pod()` about its pod every second: a
`Verdict` with `fatal=True` stops the spawn at once with `message`, written for the person who pressed Start.
The progress page shows `classify()`'s message for each event of the pod.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..catalog.placement import vendor

IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError")

_NODES = re.compile(r"(\d+)/(\d+) nodes are available")
_INSUFFICIENT = re.compile(r"(\d+) Insufficient ([A-Za-z0-9./_-]*[A-Za-z0-9])")
_IMAGE_IN_MESSAGE = re.compile(r'image "([^"]+)"')
# kube-scheduler's FailedScheduling wording (checked against v1.37 in tests/cluster): per-node reasons as
# "<count> <reason>", comma-separated; a claim that does not exist; nodes of another kind; and the
# preemption verdict that evicting pods would not help.
_REASON = re.compile(r"(\d+) ([^,]+?)(?=, \d+ |\.?\s*$)")
_MISSING_PVC = re.compile(r'persistentvolumeclaim "([^"]+)" not found')
_OTHER_KIND = ("node(s) didn't match Pod's node affinity/selector", "node(s) had untolerated taint")
_NOT_HELPFUL = "Preemption is not helpful"
_NO_DEVICES = "cannot allocate all claims"  # DRA: device taken, shared counters or capacity used up, none free


@dataclass(frozen=True)
class Context:
    """What the person asked for, so a verdict can speak their language."""

    resource_name: str = "this environment"
    accelerator_key: str | None = None
    accelerator_name: str | None = None
    gpu_resource: str | None = None
    cpu: str | None = None
    memory: str | None = None
    image: str | None = None
    autoscaler: bool = False
    gpu_count: int = 1
    data_sets: tuple = ()  # (claim name, catalog volume key) of the launch's volumes
    dra: bool = False  # the accelerator asks for its devices by DRA (a claim the scheduler allocates)
    device_total: int | None = None  # the accelerator's `capacity`: how many such devices the cluster has


@dataclass(frozen=True)
class Verdict:
    fatal: bool
    message: str
    stage: str = ""


def gpu_words(ctx: Context, plural: bool = False) -> str:
    kind = f"{vendor(ctx.gpu_resource)} GPU{'s' if plural else ''}".strip()
    if ctx.accelerator_key:
        return f"{kind} of kind {ctx.accelerator_key}"
    return kind


def _counts(text: str) -> list[tuple[int, str]]:
    """"0/5 nodes are available: 1 Insufficient amd.com/gpu, 4 node(s) didn't match ..." ->
    [(1, "Insufficient amd.com/gpu"), (4, "node(s) didn't match ...")]."""
    nodes = _NODES.search(text)
    text = text[nodes.end():] if nodes else ""
    return [(int(m.group(1)), m.group(2).strip()) for m in _REASON.finditer(text)]


def _never_fits(preemption: str, total: int) -> bool:
    """The scheduler's preemption verdict: on every node, evicting pods would not help (the request exceeds
    what the node has, or the node is of another kind), as opposed to "No preemption victims found" (busy)."""
    return sum(n for n, why in _counts(preemption) if why.startswith(_NOT_HELPFUL)) == total > 0


def _no_such_node(ctx: Context) -> Verdict:
    if ctx.accelerator_name:
        message = (f"No node in this cluster offers {ctx.accelerator_name}, so '{ctx.resource_name}' cannot start with it. "
                   "Choose another accelerator, or ask your admin to add such a node or take it out of the catalog.")
    elif ctx.gpu_resource:
        message = (f"No node in this cluster offers the {gpu_words(ctx)} that '{ctx.resource_name}' needs, so it cannot "
                   "start. Please tell your admin (the catalog places it on nodes that do not exist).")
    else:
        message = (f"No node in this cluster matches where '{ctx.resource_name}' must run, so it cannot start. "
                   "Please tell your admin (the catalog places it on nodes that do not exist).")
    return Verdict(True, message, "scheduling")


def _gpus_short(ctx: Context, free: int, nodes: int, never: bool) -> Verdict:
    count = ctx.gpu_count
    kind = gpu_words(ctx, plural=count != 1)
    if never:
        return Verdict(True, f"'{ctx.resource_name}' needs {count} {kind} on one node, more than any node it may run on "
                             "has, so it cannot start on this cluster. Please tell your admin.", "scheduling")
    other = "accelerator" if ctx.accelerator_key else "environment"
    if count == 1:
        return Verdict(True, f"No free {kind} right now: {free} of {nodes} node{'s' if nodes != 1 else ''} "
                             f"{'have' if nodes != 1 else 'has'} one available. Try another {other} or later.", "scheduling")
    where = f"none of the {nodes} nodes that could run it has" if nodes != 1 else "the one node that could run it does not have"
    return Verdict(True, f"Not enough free {kind} right now: '{ctx.resource_name}' needs {count} on one node, and "
                         f"{where} {count} free. Try another {other} or later.", "scheduling")


def _devices_taken(ctx: Context) -> Verdict:
    name = ctx.accelerator_name or "this accelerator"
    if ctx.device_total:
        what = f"All {ctx.device_total} {name} devices are in use"
    else:
        what = f"Every {name} device is in use"
    return Verdict(True, f"{what} right now, so '{ctx.resource_name}' cannot start with it. Try another accelerator or later.",
                   "scheduling")


def _scheduling(message: str, ctx: Context) -> Verdict | None:
    missing = _MISSING_PVC.search(message)
    if missing:  # no autoscaler creates a data set's volume: final in every cluster
        claim = missing.group(1)
        name = dict(ctx.data_sets).get(claim)
        what = f"The data set '{name}'" if name else f"The storage volume '{claim}'"
        return Verdict(True, f"{what} is not available: ask your admin to create its volume claim '{claim}' in the hub's "
                             f"namespace. '{ctx.resource_name}' cannot start without it.", "scheduling")
    if ctx.autoscaler:
        # A cluster autoscaler may add a node; waiting is the right thing to do.
        return Verdict(False, "Waiting for the cluster to add a node with room for this server", "scheduling")
    head, _, preemption = message.partition("preemption:")
    nodes = _NODES.search(head)
    if not nodes:
        return None
    free, total = int(nodes.group(1)), int(nodes.group(2))
    if free:
        return None
    reasons = _counts(head)
    never = _never_fits(preemption, total)
    if never and reasons and sum(n for n, _ in reasons) == total and all(why.startswith(_OTHER_KIND) for _, why in reasons):
        return _no_such_node(ctx)  # every node is of another kind: none of this kind exists (no autoscaler)
    if ctx.dra and any(why.startswith(_NO_DEVICES) for _, why in reasons):
        return _devices_taken(ctx)
    short = {name: int(count) for count, name in _INSUFFICIENT.findall(head)}
    if not short:
        return None
    if ctx.gpu_resource and ctx.gpu_resource in short:
        return _gpus_short(ctx, free, short[ctx.gpu_resource], never)
    for name, words, amount in (("cpu", "CPU", ctx.cpu), ("memory", "memory", ctx.memory)):
        if name in short:
            n = short[name]
            asked = f" ({amount})" if amount else ""
            return Verdict(True, f"Not enough free {words} for '{ctx.resource_name}'{asked} right now: "
                                 f"{free} of {n} node{'s' if n != 1 else ''} that could run it {'have' if n != 1 else 'has'} room. "
                                 "Try a smaller environment or later.", "scheduling")
    name, n = next(iter(short.items()))
    return Verdict(True, f"Not enough free {name} right now: {free} of {total} nodes have room. Try again later.", "scheduling")


def _image(message: str, ctx: Context, reason: str) -> Verdict:
    m = _IMAGE_IN_MESSAGE.search(message)
    image = m.group(1) if m else (ctx.image or "the image")
    lower = message.lower()
    if reason == "InvalidImageName" or "invalidimagename" in lower or "invalid reference format" in lower:
        why = "its name is not a valid image reference"
    elif any(s in lower for s in ("unauthorized", "denied", "authentication required", "forbidden")):
        why = "the registry refused access (check the image's pull secrets)"
    elif any(s in lower for s in ("not found", "manifest unknown")):
        why = "the registry does not have it"
    else:
        why = "pulling it failed"
    return Verdict(True, f"The image {image} for '{ctx.resource_name}' cannot be used: {why}. "
                         "Please tell the administrators; another environment may work meanwhile.", "pulling")


def classify(event: dict, ctx: Context = Context()) -> Verdict | None:
    """None for events that say nothing new; otherwise a stage message or a fatal verdict."""
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    if reason == "FailedScheduling":
        return _scheduling(message, ctx) or Verdict(False, f"Waiting for a node: {message}", "scheduling")
    if reason == "Scheduled":
        m = re.search(r"to (\S+)$", message.strip())
        return Verdict(False, f"Scheduled on node {m.group(1)}" if m else "Scheduled on a node", "scheduled")
    if reason in ("Pulling",):
        what = f"the image {ctx.image}" if ctx.image else "the image"
        return Verdict(False, f"Pulling {what} (the first start on a node can take minutes)", "pulling")
    if reason == "Pulled":
        return Verdict(False, "Image ready", "pulling")
    if reason in ("Failed", "BackOff", "InspectFailed", "ErrImageNeverPull"):
        if reason == "InspectFailed" or any(e in message for e in IMAGE_ERRORS) or "pull image" in message or "pulling image" in message:
            return _image(message, ctx, reason)
        if message.startswith("Error:") or any(e in message for e in CONFIG_ERRORS):
            detail = message.removeprefix("Error:").strip()
            return Verdict(True, f"The server for '{ctx.resource_name}' cannot be configured: {detail}. "
                                 "Please tell the administrators.", "starting")
        return None
    if reason == "Created":
        return Verdict(False, "Container created", "starting")
    if reason == "Started":
        return Verdict(False, "Starting JupyterLab", "starting")
    if reason == "SuccessfulAttachVolume":
        return Verdict(False, "Storage attached", "scheduled")
    return None


def classify_pod(pod: dict | None, ctx: Context = Context()) -> Verdict | None:
    """The pod tells the fatal part of the events' story: kube-scheduler writes the FailedScheduling message
    into the PodScheduled condition too, and the kubelet puts image and configuration errors in the container
    states. Reading one pod is O(1); scanning the namespace's events for it is O(events), per starting server."""
    if not pod:
        return None
    status = pod.get("status") or {}
    if status.get("nominatedNodeName"):
        # The scheduler preempts lower-priority pods (a user placeholder) for it: the condition still says
        # Unschedulable until they are gone, and the pod goes there next.
        return Verdict(False, f"Making room on node {status['nominatedNodeName']} (a placeholder gives way)", "scheduling")
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False" \
                and condition.get("reason") == "Unschedulable":
            verdict = _scheduling(condition.get("message") or "", ctx)
            if verdict and verdict.fatal:
                return verdict
    for container in status.get("containerStatuses") or ():
        waiting = ((container.get("state") or {}).get("waiting")) or {}
        reason, message = waiting.get("reason") or "", waiting.get("message") or ""
        if reason in IMAGE_ERRORS:
            return _image(message or container.get("image", ""), ctx, reason)
        if reason in CONFIG_ERRORS:
            return Verdict(True, f"The server for '{ctx.resource_name}' cannot be configured: {message or reason}. "
                                 "Please tell the administrators.", "starting")
    return None
