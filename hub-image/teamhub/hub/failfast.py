"""Read Kubernetes pod events while a server starts: is it progressing, or will it never start?

Pure functions of event (and pod) dicts as the Kubernetes API returns them, so they can be tested with
recorded events. The spawner asks `classify()` about every new event of its pod: a `Verdict` with
`fatal=True` stops the spawn at once with `message`, written for the person who pressed Start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError")

_NODES = re.compile(r"(\d+)/(\d+) nodes are available")
_INSUFFICIENT = re.compile(r"(\d+) Insufficient ([A-Za-z0-9./_-]*[A-Za-z0-9])")
_IMAGE_IN_MESSAGE = re.compile(r'image "([^"]+)"')


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


@dataclass(frozen=True)
class Verdict:
    fatal: bool
    message: str
    stage: str = ""


def vendor(gpu_resource: str | None) -> str:
    domain = (gpu_resource or "").split("/", 1)[0]
    return {"amd.com": "AMD", "nvidia.com": "NVIDIA", "gpu.intel.com": "Intel"}.get(domain, "")


def gpu_words(ctx: Context) -> str:
    kind = f"{vendor(ctx.gpu_resource)} GPU".strip()
    if ctx.accelerator_key:
        return f"{kind} of kind {ctx.accelerator_key}"
    return kind


def _scheduling(message: str, ctx: Context) -> Verdict | None:
    if ctx.autoscaler:
        # A cluster autoscaler may add a node; waiting is the right thing to do.
        return Verdict(False, "Waiting for the cluster to add a node with room for this server", "scheduling")
    message = message.split("preemption:")[0]
    nodes = _NODES.search(message)
    short = {name: int(count) for count, name in _INSUFFICIENT.findall(message)}
    if not nodes or not short:
        return None
    free, total = int(nodes.group(1)), int(nodes.group(2))
    if free:
        return None
    if ctx.gpu_resource and ctx.gpu_resource in short:
        n = short[ctx.gpu_resource]
        other = "accelerator" if ctx.accelerator_key else "environment"
        return Verdict(True, f"No free {gpu_words(ctx)} right now: {free} of {n} node{'s' if n != 1 else ''} "
                             f"{'have' if n != 1 else 'has'} one available. Try another {other} or later.", "scheduling")
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
    """Container states tell the same story as events, sometimes sooner (or when events were missed)."""
    if not pod:
        return None
    statuses = ((pod.get("status") or {}).get("containerStatuses")) or []
    for status in statuses:
        waiting = ((status.get("state") or {}).get("waiting")) or {}
        reason, message = waiting.get("reason") or "", waiting.get("message") or ""
        if reason in IMAGE_ERRORS:
            return _image(message or status.get("image", ""), ctx, reason)
        if reason in CONFIG_ERRORS:
            return Verdict(True, f"The server for '{ctx.resource_name}' cannot be configured: {message or reason}. "
                                 "Please tell the administrators.", "starting")
    return None
