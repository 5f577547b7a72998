"""What the cluster admits from the hub (issue 16): the admission policy's parameters, from the catalog.

The chart's ValidatingAdmissionPolicy (chart/templates/admission/policy.yaml) refuses any pod the hub's
ServiceAccount creates that is not one of these shapes. Helm cannot call Python, so the chart renders the
parameters itself ("teamhub.admission.params" in chart/templates/_admission.tpl, on the placement helper the
prepuller uses); `params` here writes them from the hub's own placement code (`catalog.placement.build_launch`,
the `Launch` the spawner turns into a pod), and tests/chart/test_admission_params.py holds the two equal
for every values file, while the cluster tier shows the pods KubeSpawner builds are admitted. The hub never
writes them: a compromised hub must not be able to widen what it may start.

The layout (one ConfigMap key per placement, 15 lines) is described next to the template.
"""

from __future__ import annotations

from .access import access_of
from .model import Catalog, Resource
from .names import POD_NAME_TEMPLATE, PVC_NAME_TEMPLATE
from .placement import build_launch

SHAPE_LINES = 15

# Environment names the hub sets per start, with values the policy cannot know (tokens, URLs, the person, the
# session's end): admitted by name with a plain `value`, never `valueFrom`. Every other variable must be one of
# the placement's own (`Launch.pod_env`) with exactly its value. The chart's "teamhub.admission.launchEnv"
# lists the same names; tests/chart/test_admission_params.py holds the two equal (through the params).
LAUNCH_ENV = (
    # JupyterHub's Spawner.get_env (never the hub's own environment: KubeSpawner keeps none of it)
    "JPY_API_TOKEN", "JUPYTERHUB_ACTIVITY_URL", "JUPYTERHUB_ADMIN_ACCESS", "JUPYTERHUB_API_TOKEN",
    "JUPYTERHUB_API_URL", "JUPYTERHUB_BASE_URL", "JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED",
    "JUPYTERHUB_COOKIE_OPTIONS", "JUPYTERHUB_DEBUG", "JUPYTERHUB_DEFAULT_URL", "JUPYTERHUB_DISABLE_USER_CONFIG",
    "JUPYTERHUB_HOST", "JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_CALLBACK_URL",
    "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "JUPYTERHUB_OAUTH_SCOPES", "JUPYTERHUB_PUBLIC_HUB_URL",
    "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_ROOT_DIR", "JUPYTERHUB_SERVER_NAME", "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_USER",
    # KubeSpawner's
    "CPU_GUARANTEE", "CPU_LIMIT", "JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC", "MEM_GUARANTEE", "MEM_LIMIT",
    # teamhub's (hub.teamhubmixin, hub.sessions; the pull guard's allow-list)
    "TEAMHUB_ALLOWED_REPOS", "TEAMHUB_RESOURCE", "TEAMHUB_SESSION_END", "TEAMHUB_SESSION_END_EPOCH",
    "TEAMHUB_SESSION_MINUTES",
)


def _number(value) -> str:
    """As the chart writes a quantity or count: 2 not 2.0 (YAML numbers reach Helm as floats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _optional(value) -> str:
    return "" if value is None else _number(value)


def toleration(t) -> str:
    """A toleration as the policy compares them: key|operator|value|effect|seconds."""
    seconds = t.get("tolerationSeconds")
    return "|".join((t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "", t.get("effect") or "",
                     "" if seconds is None else _number(seconds)))


def env_entry(name: str, value: str) -> str:
    """One variable as the policy compares them: NAME=VALUE with backslash, newline and comma escaped, so the
    placement's variables fit on one line of the shape, separated by commas."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\x2c")
    return f"{name}={escaped}"


def placement_key(resource: str, accelerator: str | None) -> str:
    return f"{resource}.{accelerator}" if accelerator else resource


def shape(catalog: Catalog, resource: Resource, accelerator_key: str | None) -> str:
    accelerator = catalog.accelerators[accelerator_key] if accelerator_key else None
    launch = build_launch(catalog, resource, accelerator, catalog.resource_limit_minutes(resource),
                          access_of(catalog, (), admin=True))
    user = launch.pod_user
    granting = sorted(k for k, team in catalog.teams.items() if resource.key in team.resources)
    lines = (
        launch.image.ref,
        launch.image.pull_policy,
        ",".join(sorted(set(launch.image.pull_secrets))),
        _number(resource.cpu_request),
        _optional(resource.cpu_limit),
        _number(resource.memory_request),
        _optional(resource.memory_limit),
        f"{launch.gpu.resource}={launch.gpu.count}" if launch.gpu else "",
        ",".join(sorted(f"{k}={v}" for k, v in launch.node_selector.items())),
        ",".join(toleration(t) for t in launch.tolerations),
        str(launch.minutes * 60),
        ",".join(_optional(v) for v in (user.run_as_user, user.run_as_group, user.fs_group)),
        ",".join(granting),
        resource.priority_class,
        ",".join(env_entry(k, str(v)) for k, v in sorted(launch.pod_env.items())),
    )
    assert len(lines) == SHAPE_LINES
    return "\n".join(lines)


def params(catalog: Catalog, home: dict | None) -> dict:
    """The ConfigMap's data. `home`: the hub's storage settings (`hub.config.storage_settings`)."""
    data = {placement_key(r.key, a): shape(catalog, r, a)
            for r in catalog.resources.values() for a in (r.accelerators or (None,))}
    data["_launch-env"] = ",".join(sorted(LAUNCH_ENV))  # "_": no catalog key starts with it
    for key, vol in catalog.volumes.items():
        data[f"volume.{key}"] = "\n".join((vol.pvc, vol.mount_path, vol.sub_path or "", str(vol.read_only).lower()))
    if home and home["enabled"]:
        prefixes = [t.removesuffix("{user_server}") for t in (PVC_NAME_TEMPLATE, POD_NAME_TEMPLATE)]
        data["home"] = "\n".join((*prefixes, home["mountPath"]))
    return data
