"""Where a resource runs: the pod overlay of one launch, and from the same rule, where each image is pre-pulled.

`place()` is the one placement rule: a resource's image, env, node selector and tolerations, with the chosen
accelerator and that accelerator's override layered on top (the override wins, then the accelerator, then
the resource). The spawner uses it through `build_launch`; `placements()` applies it to every way a resource
can be launched, so the prepuller's node targeting follows what the spawner does.

Helm cannot call Python, so `chart/templates/_prepull.tpl` ("teamhub.prepull.plan") writes the rule again for
the puller DaemonSets; tests/chart/test_prepull_placements.py renders the chart for every values file and
asserts that its DaemonSets carry exactly the groups `placements()` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import devices
from .model import Accelerator, Catalog, Gpu, Image, PodUser, Resource, gpu_number, image_ref

if TYPE_CHECKING:
    from .access import Access


@dataclass(frozen=True)
class Placement:
    """One way of launching a resource: which image, with which env, on which nodes."""

    image: str  # catalog image key
    env: Mapping
    node_selector: Mapping
    tolerations: tuple


@dataclass(frozen=True)
class Launch:
    """A checked request with everything the spawner needs, overrides already applied."""

    resource: Resource
    accelerator: Accelerator | None
    minutes: int
    team: str | None
    image: Image
    gpu: Gpu | None
    env: Mapping
    node_selector: Mapping
    tolerations: tuple
    volumes: tuple  # Volume objects: the person's teams' and the resource's
    teams: tuple = field(default=())
    pod_user: PodUser = PodUser()  # uid/gid/fsGroup: resource over image over singleuser.securityContext
    device_vendor: str | None = None  # the vendor of the DRA driver(s) of the accelerator's `devices`, when known

    @property
    def devices(self):
        """The accelerator's devices by Dynamic Resource Allocation (catalog.devices.Devices), or None."""
        return self.accelerator.devices if self.accelerator else None

    @property
    def gpu_count(self) -> int | float:
        """GPUs the server holds: an extended resource's count, or its devices with a part or a share counted as
        its fraction of a whole GPU (`Devices.gpus`); a number for JSON and the database (int when whole)."""
        if self.gpu:
            return self.gpu.count
        return gpu_number(self.devices.gpus) if self.devices else 0

    @property
    def pod_env(self) -> dict:
        """The environment this placement fixes: GPU visibility, then the catalog's env on top. The admission
        policy admits exactly these values (catalog.admission), beside the hub's per-launch names."""
        return {**visibility_env(self.gpu, self.devices is not None, self.device_vendor), **self.env}


def vendor(gpu_resource: str | None) -> str:
    domain = (gpu_resource or "").split("/", 1)[0]
    return {"amd.com": "AMD", "nvidia.com": "NVIDIA", "gpu.intel.com": "Intel"}.get(domain, "")


def visibility_env(gpu, dra: bool = False, dra_vendor: str | None = None) -> dict:
    """Vendor visibility variables so a pod sees no GPU it was not given (on shared nodes). With DRA the
    driver makes only the allocated devices visible: other vendors' are hidden when the driver's vendor is
    known, and nothing is set when it is not (a variable could hide the very device the claim got)."""
    if dra and dra_vendor is None:
        return {}
    kind = dra_vendor if dra else (vendor(gpu.resource) if gpu else None)
    env = {}
    if kind != "NVIDIA":
        env["NVIDIA_VISIBLE_DEVICES"] = "none"
    if kind != "AMD":
        env["ROCR_VISIBLE_DEVICES"] = "-1"
        env["HIP_VISIBLE_DEVICES"] = "-1"
    if gpu is None and not dra:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def place(resource: Resource, accelerator: Accelerator | None) -> Placement:
    override = resource.overrides.get(accelerator.key) if accelerator else None
    image_key = (override.image if override and override.image else None) or resource.image
    env, selector, tolerations = dict(resource.env), dict(resource.node_selector), list(resource.tolerations)
    for layer in (accelerator, override):
        if layer is not None:
            env.update(layer.env)
            selector.update(layer.node_selector)
            tolerations.extend(t for t in layer.tolerations if t not in tolerations)
    return Placement(image_key, env, selector, tuple(tolerations))


def build_launch(catalog: Catalog, resource: Resource, accelerator: Accelerator | None, minutes: int, access: Access) -> Launch:
    where = place(resource, accelerator)
    volume_keys: list = []
    for team in access.teams:
        volume_keys.extend(catalog.teams[team].volumes)
    volume_keys.extend(resource.volumes)
    volumes = tuple(catalog.volumes[k] for k in dict.fromkeys(volume_keys))
    image = catalog.images[where.image]
    return Launch(
        resource=resource,
        accelerator=accelerator,
        minutes=minutes,
        team=access.charged_team.get(resource.key),
        image=image,
        gpu=accelerator.gpu if accelerator else resource.gpu,
        env=where.env,
        node_selector=where.node_selector,
        tolerations=where.tolerations,
        volumes=volumes,
        teams=access.teams,
        pod_user=resource.pod_user.over(image.pod_user.over(catalog.pod_user)),
        device_vendor=devices.vendor(catalog, accelerator.devices if accelerator else None),
    )


# --- the prepuller ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PullImage:
    key: str
    ref: str  # exactly what the spawner puts in the pod (image_ref), so a pulled image is never pulled again
    pull_policy: str
    pull_secrets: tuple


@dataclass(frozen=True)
class PullGroup:
    """Images pulled together by one puller DaemonSet: on nodes matching any of `terms` (each a node selector;
    none means every node), tolerating `tolerations`."""

    terms: tuple  # of node-selector dicts, first occurrence first
    tolerations: tuple
    images: tuple = field(default=())  # PullImage, one per ref

    @property
    def pull_secrets(self) -> tuple:
        return tuple(sorted({s for img in self.images for s in img.pull_secrets}))


def _unique(items) -> tuple:
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return tuple(out)


def _target(where: list) -> tuple:
    """(terms, tolerations) for an image used by these placements: the union of their node selectors (no
    terms once one of them may run on any node) and of their tolerations."""
    terms = () if any(not p.node_selector for p in where) else _unique(dict(p.node_selector) for p in where)
    return terms, _unique(t for p in where for t in p.tolerations)


def _image_placements(catalog: Catalog) -> dict:
    """image key -> the placements that launch it, resources in key order (as the chart walks them)."""
    uses: dict = {}
    for rkey in sorted(catalog.resources):
        resource = catalog.resources[rkey]
        accelerators = [catalog.accelerators[a] for a in resource.accelerators] or [None]
        for accelerator in accelerators:
            where = place(resource, accelerator)
            if catalog.images[where.image].pre_pull:
                uses.setdefault(where.image, []).append(where)
    return uses


def placements(catalog: Catalog, extra_images: Mapping | None = None) -> tuple:
    """The prepuller's groups: every image a launch can use (not `prePull: false`) plus `prePuller.extraImages`
    (values with defaults filled: name, tag, digest, pullPolicy, pullSecrets, nodeSelector, tolerations), each only on the nodes
    its placements target; images with the same target share a group. Catalog images come first in key order."""
    entries: list = []  # (PullImage, terms, tolerations)
    uses = _image_placements(catalog)
    for key in sorted(uses):
        img: Image = catalog.images[key]
        entries.append((PullImage(key, img.ref, img.pull_policy, img.pull_secrets), *_target(uses[key])))
    for key in sorted(extra_images or {}):
        raw = extra_images[key]
        pulled = PullImage(key, image_ref(raw["name"], raw.get("tag"), raw.get("digest")),
                           raw["pullPolicy"], tuple(raw.get("pullSecrets") or ()))
        where = Placement(key, {}, dict(raw.get("nodeSelector") or {}), tuple(raw.get("tolerations") or ()))
        entries.append((pulled, *_target([where])))
    groups: dict = {}
    for pulled, terms, tolerations in entries:
        gkey = repr((terms, tolerations))
        group = groups.get(gkey) or PullGroup(terms, tolerations)
        if pulled.ref not in {i.ref for i in group.images}:
            group = PullGroup(terms, tolerations, group.images + (pulled,))
        groups[gkey] = group
    return tuple(groups.values())


__all__ = ["Launch", "Placement", "PullGroup", "PullImage", "build_launch", "place", "placements"]
