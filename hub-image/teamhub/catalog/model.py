"""The catalog as typed, read-only objects, built from values that passed validation.

Nothing here checks anything: `validation` has refused bad values before these are built, so the
code that launches servers can trust every reference it follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from types import MappingProxyType

from ..values.quantities import memory_bytes


def image_ref(name: str, tag: str | None = None, digest: str | None = None) -> str:
    """The one way an image is referenced: `name[:tag][@digest]` (the tag kept for people; with a digest the
    node pulls exactly that). The chart's twin is the template helper "teamhub.image.ref"; the prepuller
    and the spawner must name an image identically, or a pre-pulled image is pulled again."""
    ref = f"{name}:{tag}" if tag else name
    return f"{ref}@{digest}" if digest else ref


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Gpu:
    resource: str
    count: int


@dataclass(frozen=True)
class PodUser:
    """The uid/gid a server runs as and the group that owns its volumes; None leaves the field to the
    layer below (chart default < image < resource)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    fs_group: int | None = None

    def over(self, below: PodUser) -> PodUser:
        """These settings, with any field this layer leaves open taken from `below`."""
        return PodUser(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None else getattr(below, f.name)
                          for f in fields(self)})


NO_OVERRIDE = PodUser()


@dataclass(frozen=True)
class Image:
    key: str
    name: str
    tag: str | None
    pull_policy: str
    pull_secrets: tuple
    pre_pull: bool
    pod_user: PodUser = NO_OVERRIDE
    digest: str | None = None

    @property
    def ref(self) -> str:
        return image_ref(self.name, self.tag, self.digest)


@dataclass(frozen=True)
class Accelerator:
    key: str
    display_name: str
    description: str
    gpu: Gpu | None  # an extended resource (device plugin); None when the kind asks by DRA (`devices`)
    node_selector: Mapping
    tolerations: tuple
    env: Mapping
    capacity: int | None = None  # devices of this kind in the cluster: the queue's pool (issue 26)
    devices: Devices | None = None  # the kind's devices by Dynamic Resource Allocation (issue 27, catalog/devices.py)


@dataclass(frozen=True)
class WholeGpu:
    """catalog.deviceClasses.<key>.gpu: the GPU a class's devices are, or are parts of."""

    name: str  # as people call it, e.g. "MI300X"
    memory: str  # quantity text, e.g. "192Gi"


@dataclass(frozen=True)
class DeviceClass:
    """catalog.deviceClasses.<key>: a DeviceClass the chart renders (catalog/devices.py)."""

    key: str
    driver: str
    selectors: Mapping  # attribute -> str | int | bool
    cel: str | None = None
    gpu: WholeGpu | None = None
    memory: str | None = None  # one device's memory when it is a part of `gpu` (a partition, a MIG slice)


@dataclass(frozen=True)
class Alternative:
    device_class: str  # a key of catalog.deviceClasses or a DeviceClass of the cluster
    count: int = 1
    capacity: Mapping = None  # capacity name -> quantity text, or None
    share: Fraction = Fraction(1)  # of a whole GPU, per device: a part's or a capacity share's memory over the GPU's
    gpu: WholeGpu | None = None  # the class's GPU, when the catalog says what it is
    memory: str | None = None  # what one device gives the server: the share's, the part's or the GPU's memory

    def __post_init__(self):
        object.__setattr__(self, "capacity", dict(self.capacity or {}))

    @property
    def gpus(self) -> Fraction:
        """GPUs this alternative holds: its devices, each counted as its share of a whole GPU."""
        return self.count * self.share


@dataclass(frozen=True)
class Devices:
    """An accelerator's `devices:`: one alternative (deviceClass), or several in order (firstAvailable)."""

    alternatives: tuple  # of Alternative
    first_available: bool = False

    @property
    def count(self) -> int:
        """Devices a server holds: the most any alternative takes."""
        return max(a.count for a in self.alternatives)

    @property
    def gpus(self) -> Fraction:
        """GPUs a server holds, for quotas, budgets, usage and metrics: the most any alternative takes, a part or
        a share counted as its memory's fraction of the whole GPU (docs/accelerators.md)."""
        return max(a.gpus for a in self.alternatives)


def gpu_number(gpus) -> int | float:
    """GPUs as a plain number (a Fraction from `Devices.gpus`, a float from JSON): int when whole."""
    value = Fraction(gpus).limit_denominator(10000)
    return int(value) if value.denominator == 1 else float(value)


def gpu_text(gpus) -> str:
    """GPUs for people: "1", "2", "1/4", "1.5" (a fraction below one as a fraction, other parts as decimals)."""
    value = Fraction(gpus).limit_denominator(10000)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}" if value < 1 and value.denominator <= 16 else f"{float(value):.3g}"


def build_devices(raw, classes: Mapping | None = None) -> Devices | None:
    if not raw:
        return None
    if raw.get("firstAvailable"):
        return Devices(tuple(_alternative(a, classes or {}) for a in raw["firstAvailable"]), True)
    return Devices((_alternative(raw, classes or {}),))


def _alternative(raw, classes: Mapping) -> Alternative:
    capacity = {k: str(v) for k, v in (raw.get("capacity") or {}).items()}
    cls = classes.get(raw["deviceClass"])
    gpu = cls.gpu if cls else None
    if gpu is None:
        return Alternative(raw["deviceClass"], raw.get("count", 1), capacity, memory=capacity.get("memory"))
    memory = capacity.get("memory") or cls.memory or gpu.memory
    share = min(Fraction(memory_bytes(memory)) / Fraction(memory_bytes(gpu.memory)), Fraction(1))
    return Alternative(raw["deviceClass"], raw.get("count", 1), capacity, share, gpu, memory)


def build_classes(raw) -> dict:
    def gpu(v):
        return WholeGpu(v["name"], str(v["memory"])) if v else None

    return {k: DeviceClass(k, v["driver"], dict(v.get("selectors") or {}), v.get("cel"), gpu(v.get("gpu")),
                           str(v["memory"]) if v.get("memory") is not None else None)
            for k, v in (raw or {}).items()}


@dataclass(frozen=True)
class Volume:
    key: str
    pvc: str
    mount_path: str
    sub_path: str | None
    read_only: bool


@dataclass(frozen=True)
class Override:
    image: str | None
    env: Mapping
    node_selector: Mapping
    tolerations: tuple


@dataclass(frozen=True)
class Resource:
    key: str
    display_name: str
    description: str
    category: str
    image: str
    cpu_request: object
    cpu_limit: object
    memory_request: object
    memory_limit: object
    gpu: Gpu | None
    accelerators: tuple
    overrides: Mapping  # accelerator key -> Override
    node_selector: Mapping
    tolerations: tuple
    env: Mapping
    volumes: tuple
    max_session_minutes: int | None
    pod_user: PodUser = NO_OVERRIDE
    priority_class: str = ""  # the servers' PriorityClass; "" the cluster's default
    user_scheduler: bool = False  # packed onto the fewest nodes by the chart's user scheduler (userScheduler)


@dataclass(frozen=True)
class Team:
    key: str
    display_name: str
    description: str
    resources: tuple
    github_teams: tuple
    oidc_groups: tuple
    users: tuple
    volumes: tuple
    max_servers: int | None
    max_gpus: int | None
    budgets: tuple = ()  # Budget: quota.gpuHours / quota.cpuHours (teamhub/usage/budget.py)
    queue_weight: float = 1  # queue.weight: fair sharing when teams borrow from the pool
    queue_gpus: Mapping = field(default_factory=lambda: MappingProxyType({}))  # accelerator -> TeamGpus


@dataclass(frozen=True)
class TeamGpus:
    """A team's share of one accelerator kind's pool in the GPU queue (catalog.teams.<t>.queue.accelerators)."""

    guaranteed: int = 0
    max: int | None = None  # None: the whole pool


@dataclass(frozen=True)
class Queue:
    """`queue`: GPU servers wait in line in Kueue (teamhub/catalog/queue.py) instead of being refused."""

    enabled: bool = False
    max_wait_minutes: int = 60
    strategy: str = "BestEffortFIFO"
    namespace: str = ""  # singleuser.namespace: where the LocalQueues (and the queued servers) live


@dataclass(frozen=True)
class Budget:
    kind: str  # "gpu" (quota.gpuHours) or "cpu" (quota.cpuHours)
    amount: float  # hours in the window
    window_days: int

    @property
    def unit(self) -> str:
        return "GPU-hours" if self.kind == "gpu" else "CPU-core-hours"


def budgets_of(quota: dict) -> tuple:
    return tuple(Budget(kind, float(quota[key]["amount"]), int(str(quota[key].get("window", "30d"))[:-1]))
                 for kind, key in (("gpu", "gpuHours"), ("cpu", "cpuHours")) if quota.get(key))


@dataclass(frozen=True)
class Sessions:
    default_minutes: int
    max_minutes: int
    idle_cull_minutes: int
    budget_check_seconds: int = 5  # sessions.budgetCheckSeconds: the hub's poll interval


@dataclass
class Catalog:
    images: Mapping
    accelerators: Mapping
    volumes: Mapping
    resources: Mapping
    teams: Mapping
    sessions: Sessions
    local_users: Mapping  # local login name -> tuple of team keys
    admins: frozenset
    pod_user: PodUser = NO_OVERRIDE  # singleuser.securityContext: every server's uid/gid unless overridden
    queue: Queue = Queue()
    device_classes: Mapping = field(default_factory=lambda: MappingProxyType({}))  # key -> DeviceClass
    # Indexes so resolving a person costs O(their teams), not O(all teams).
    by_user: dict = field(default_factory=dict)
    by_github: dict = field(default_factory=dict)
    by_oidc: dict = field(default_factory=dict)
    team_order: dict = field(default_factory=dict)
    resource_order: dict = field(default_factory=dict)

    def __post_init__(self):
        self.team_order = {key: i for i, key in enumerate(self.teams)}
        self.resource_order = {key: i for i, key in enumerate(self.resources)}
        for team in self.teams.values():
            for user in team.users:
                self.by_user.setdefault(user, []).append(team.key)
            for slug in team.github_teams:
                self.by_github.setdefault(slug.lower(), []).append(team.key)
            for group in team.oidc_groups:
                self.by_oidc.setdefault(group, []).append(team.key)

    def resource_limit_minutes(self, resource: Resource) -> int:
        return resource.max_session_minutes or self.sessions.max_minutes


def _gpu(raw) -> Gpu | None:
    return Gpu(raw["resource"], raw["count"]) if raw else None


def _pod_user(raw) -> PodUser:
    raw = raw or {}
    return PodUser(raw.get("runAsUser"), raw.get("runAsGroup"), raw.get("fsGroup"))


def build(values: dict) -> Catalog:
    """Typed catalog from validated values with defaults applied (see validation.load)."""
    cat = values["catalog"]
    images = {
        k: Image(k, v["name"], v.get("tag"), v["pullPolicy"], tuple(v.get("pullSecrets", ())), v["prePull"],
                 _pod_user(v.get("securityContext")), v.get("digest"))
        for k, v in cat["images"].items()
    }
    classes = build_classes(cat.get("deviceClasses"))
    accelerators = {
        k: Accelerator(
            k, v["displayName"], v.get("description", ""), _gpu(v.get("gpu")), _frozen(v.get("nodeSelector")),
            tuple(v.get("tolerations", ())), _frozen(v.get("env")), v.get("capacity"), build_devices(v.get("devices"), classes),
        )
        for k, v in cat["accelerators"].items()
    }
    volumes = {
        k: Volume(k, v["pvc"], v["mountPath"], v.get("subPath"), v["readOnly"]) for k, v in cat["volumes"].items()
    }
    resources = {}
    for k, v in cat["resources"].items():
        overrides = {
            acc: Override(o.get("image"), _frozen(o.get("env")), _frozen(o.get("nodeSelector")), tuple(o.get("tolerations", ())))
            for acc, o in (v.get("acceleratorOverrides") or {}).items()
        }
        resources[k] = Resource(
            key=k,
            display_name=v["displayName"],
            description=v.get("description", ""),
            category=v.get("category", ""),
            image=v["image"],
            cpu_request=v["cpu"]["request"],
            cpu_limit=v["cpu"].get("limit"),
            memory_request=v["memory"]["request"],
            memory_limit=v["memory"].get("limit"),
            gpu=_gpu(v.get("gpu")),
            accelerators=tuple(v.get("accelerators", ())),
            overrides=_frozen(overrides),
            node_selector=_frozen(v.get("nodeSelector")),
            tolerations=tuple(v.get("tolerations", ())),
            env=_frozen(v.get("env")),
            volumes=tuple(v.get("volumes", ())),
            max_session_minutes=v.get("maxSessionMinutes"),
            pod_user=_pod_user(v.get("securityContext")),
            priority_class=v.get("priorityClassName") or "",
            user_scheduler=bool(v.get("userScheduler")),
        )
    teams = {
        k: Team(
            key=k,
            display_name=v.get("displayName", k),
            description=v.get("description", ""),
            resources=tuple(v["resources"]),
            github_teams=tuple(v.get("githubTeams", ())),
            oidc_groups=tuple(v.get("oidcGroups", ())),
            users=tuple(v.get("users", ())),
            volumes=tuple(v.get("volumes", ())),
            max_servers=(v.get("quota") or {}).get("maxServers"),
            max_gpus=(v.get("quota") or {}).get("maxGpus"),
            budgets=budgets_of(v.get("quota") or {}),
            queue_weight=(v.get("queue") or {}).get("weight", 1),
            queue_gpus=_frozen({kind: TeamGpus(g.get("guaranteed", 0), g.get("max"))
                                for kind, g in ((v.get("queue") or {}).get("accelerators") or {}).items()}),
        )
        for k, v in cat["teams"].items()
    }
    s = values["sessions"]
    local = values["auth"].get("local") or {}
    return Catalog(
        images=_frozen(images),
        accelerators=_frozen(accelerators),
        volumes=_frozen(volumes),
        resources=_frozen(resources),
        teams=_frozen(teams),
        sessions=Sessions(s["defaultMinutes"], s["maxMinutes"], s["idleCullMinutes"], s["budgetCheckSeconds"]),
        local_users=_frozen({name: tuple(u.get("teams", ())) for name, u in (local.get("users") or {}).items()}),
        admins=frozenset(values["auth"].get("admins", ())),
        pod_user=_pod_user((values.get("singleuser") or {}).get("securityContext")),
        queue=_queue(values),
        device_classes=_frozen(classes),
    )


def _queue(values: dict) -> Queue:
    q = values.get("queue") or {}
    return Queue(bool(q.get("enabled", False)), q.get("maxWaitMinutes", 60), q.get("queueingStrategy", "BestEffortFIFO"),
                 (values.get("singleuser") or {}).get("namespace") or "")
