"""The GPU queue (issue 26): Kueue's objects from the catalog, and which launches it can ever admit.

Kueue is the queue; teamhub only describes it. From the same catalog the pods are placed by:
  - a ResourceFlavor per accelerator kind whose `nodeLabels` are exactly that kind's node selector (the
    placement already puts them in the pod, so Kueue's admission, which merges them into the pod's node
    selector, changes nothing about where the pod runs);
  - one Cohort for the pool: for every kind, the devices no team is guaranteed (`capacity` minus the teams'
    `guaranteed`), so the cohort's total is the pool;
  - per team a ClusterQueue holding its `guaranteed` devices per kind and borrowing up to its `max` (the pool
    when unset), with `queue.queueingStrategy`, the team's fair-sharing weight and preemption `Never` on every
    path (a running notebook is never ended to make room), and a LocalQueue `team-<name>` in
    `singleuser.namespace`, named by the label the spawner puts on the team's GPU pods.

Helm cannot call Python, so the chart writes the objects itself ("teamhub.queue.objects" in
chart/templates/_queue.tpl, rendered by chart/templates/queue/kueue.yaml); tests/chart/test_queue_objects.py
holds the two equal for every values file with the queue on.
"""

from __future__ import annotations

import hashlib

from .model import Catalog

API_VERSION = "kueue.x-k8s.io/v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # on a pod: the LocalQueue it waits in
NEVER = {"reclaimWithinCohort": "Never", "borrowWithinCohort": {"policy": "Never"}, "withinClusterQueue": "Never"}
NAME_LIMIT = 63  # Kueue copies ClusterQueue and LocalQueue names into pod labels, whose values are 63 characters at most


def local_queue(team: str) -> str:
    return f"team-{team}"


def name(fullname: str, suffix: str = "") -> str:
    """A cluster-wide object's name, prefixed with the release's, kept to 63 characters (a hash of the whole
    name replaces the end of a longer one, so two long names never collide)."""
    whole = f"{fullname}-{suffix}" if suffix else fullname
    if len(whole) <= NAME_LIMIT:
        return whole
    return f"{whole[:54].removesuffix('-')}-{hashlib.sha256(whole.encode()).hexdigest()[:8]}"


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _kinds_by_resource(catalog: Catalog) -> dict:
    """device resource name -> accelerator keys using it, both sorted (one resource group each: a flavor can
    belong to one group only)."""
    groups: dict = {}
    for key in sorted(catalog.accelerators):
        groups.setdefault(catalog.accelerators[key].gpu.resource, []).append(key)
    return {res: groups[res] for res in sorted(groups)}


def team_share(catalog: Catalog, team: str, kind: str) -> tuple[int, int]:
    """(guaranteed, max) devices of accelerator `kind` for `team`: unset max is the whole pool."""
    pool = catalog.accelerators[kind].capacity or 0
    share = catalog.teams[team].queue_gpus.get(kind)
    if share is None:
        return 0, pool
    return share.guaranteed, pool if share.max is None else share.max


def _groups(catalog: Catalog, quota) -> list:
    """resourceGroups with `quota(kind) -> {nominalQuota, ...}` per flavor."""
    return [{"coveredResources": [res],
             "flavors": [{"name": kind, "resources": [{"name": res, **quota(kind)}]} for kind in kinds]}
            for res, kinds in _kinds_by_resource(catalog).items()]


def objects(catalog: Catalog, fullname: str) -> list:
    """Kueue's objects for this catalog, in the order the chart renders them; `fullname`: the chart's
    "teamhub.fullname". Flavor names in the groups are the accelerator keys until `_named` renames them."""
    namespace = catalog.queue.namespace
    flavors = [{"apiVersion": API_VERSION, "kind": "ResourceFlavor", "metadata": {"name": name(fullname, key)},
                "spec": {"nodeLabels": dict(catalog.accelerators[key].node_selector)}}
               for key in sorted(catalog.accelerators)]

    def unguaranteed(kind: str) -> dict:
        given = sum(team_share(catalog, t, kind)[0] for t in catalog.teams)
        return {"nominalQuota": _number(max((catalog.accelerators[kind].capacity or 0) - given, 0))}

    cohort = {"apiVersion": API_VERSION, "kind": "Cohort", "metadata": {"name": name(fullname)},
              "spec": {"resourceGroups": _named(_groups(catalog, unguaranteed), fullname)}}
    queues, local = [], []
    for team in sorted(catalog.teams):
        def share(kind: str, team=team) -> dict:
            guaranteed, most = team_share(catalog, team, kind)
            return {"nominalQuota": _number(guaranteed), "borrowingLimit": _number(max(most - guaranteed, 0))}

        queues.append({
            "apiVersion": API_VERSION, "kind": "ClusterQueue", "metadata": {"name": name(fullname, team)},
            "spec": {
                "cohortName": name(fullname),
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "queueingStrategy": catalog.queue.strategy,
                "fairSharing": {"weight": _number(catalog.teams[team].queue_weight)},
                "preemption": NEVER,
                "resourceGroups": _named(_groups(catalog, share), fullname),
            },
        })
        local.append({"apiVersion": API_VERSION, "kind": "LocalQueue",
                      "metadata": {"name": local_queue(team), "namespace": namespace},
                      "spec": {"clusterQueue": name(fullname, team)}})
    return flavors + [cohort] + queues + local


def _named(groups: list, fullname: str) -> list:
    for group in groups:
        for flavor in group["flavors"]:
            flavor["name"] = name(fullname, flavor["name"])
    return groups


def never_admitted(catalog: Catalog, launch) -> str | None:
    """Why Kueue could never admit this launch, in a sentence, or None. Refused before the pod exists: under
    StrictFIFO one such pod would hold up its team's whole line (seen on the control plane: a free GPU stayed
    unused for as long as the blocker waited), and under BestEffortFIFO it would wait forever."""
    if not catalog.queue.enabled or not launch.gpu:
        return None
    what = launch.resource.display_name
    if launch.accelerator is None:
        return (f"{what} asks for a GPU of no accelerator kind, which the GPU queue cannot place; "
                "ask an admin to offer it through catalog.accelerators.")
    if launch.team is None:
        return f"{what} on {launch.accelerator.display_name} counts for no team, and GPU servers wait in their team's queue."
    kind = launch.accelerator
    guaranteed, most = team_share(catalog, launch.team, kind.key)
    pool = kind.capacity or 0
    if launch.gpu.count > pool:
        return (f"{what} needs {launch.gpu.count} {kind.display_name} GPUs, more than the cluster's "
                f"{pool}: it could never start.")
    if launch.gpu.count > most:
        return (f"{what} needs {launch.gpu.count} {kind.display_name} GPUs, more than team {launch.team} may "
                f"hold at once ({most}): it could never start.")
    return None


def labels(catalog: Catalog, launch) -> dict:
    """The pod labels that put a launch in its team's line: only GPU launches, only with the queue on."""
    if catalog.queue.enabled and launch.gpu and launch.team:
        return {QUEUE_LABEL: local_queue(launch.team)}
    return {}


__all__ = ["API_VERSION", "QUEUE_LABEL", "labels", "local_queue", "name", "never_admitted", "objects", "team_share"]
