"""JupyterHub 6 configured from teamhub values. `jupyterhub_config.py` only calls `load_from_environment(c)`.

Environment (see docs/architecture.md): TEAMHUB_VALUES, TEAMHUB_MODE (kubernetes | local),
TEAMHUB_DATA_DIR, TEAMHUB_PROXY_API_URL, TEAMHUB_PROXY_PEERS, TEAMHUB_HUB_CONNECT_URL, TEAMHUB_HUB_BIND_URL
(default http://0.0.0.0:8081), POD_NAMESPACE;
local mode (teamhub demo) also reads TEAMHUB_BIND_URL, TEAMHUB_HUB_PORT, TEAMHUB_PROXY_API_PORT, and
TEAMHUB_DEMO=1 (set by `teamhub demo`: the demo accounts' published hashes are accepted; never in kubernetes mode).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from pathlib import Path

from .. import auth, clock, paths
from ..auth.clientaddr import LOOPBACK
from ..catalog.names import POD_NAME_TEMPLATE, PVC_NAME_TEMPLATE
from ..db import migrate, settings
from ..usage import budget as usage_budget
from ..usage import metrics as usage_metrics
from ..usage.store import Store
from ..values import origins
from ..values.source import YamlFileError
from . import gpuwatch, loadvalues, refusals, sessions, stopper
from .runtime import Runtime

MODES = ("kubernetes", "local")
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
HUB_PORT = 8081
CULLER_CONFIG = Path(__file__).resolve().parents[1] / "culler" / "idle_culler_config.py"
PULLGUARD_CONFIG = Path(__file__).resolve().parents[1] / "pullguard" / "etc"  # its jupyter_server_config.d, for the demo's servers


class ConfigError(Exception):
    """The values cannot configure a hub; `code` is the hub's exit status (2 unreadable or bad mode, 1 invalid)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def hub_bind_url(environ=os.environ) -> str:
    """Where the hub listens in kubernetes mode: every interface of the pod on the hub port, unless
    TEAMHUB_HUB_BIND_URL says otherwise (the cluster tier runs the image's config on loopback)."""
    return environ.get("TEAMHUB_HUB_BIND_URL") or f"http://0.0.0.0:{HUB_PORT}"


def base_url(values: dict) -> str:
    """hub.baseUrl: "/" or "/a/b/" (the schema holds it to that form)."""
    return (values.get("hub") or {}).get("baseUrl") or "/"


def loopback(url: str) -> str:
    """The same port on loopback: processes in the hub's pod (the culler) reach the hub there."""
    from urllib.parse import urlsplit

    return f"http://127.0.0.1:{urlsplit(url).port or HUB_PORT}"


def load_checked(environ=os.environ, out=sys.stderr):
    """The values as the hub reads them (TEAMHUB_VALUES, TEAMHUB_MODE), checked like `teamhub validate`:
    (checked, mode). Problems are printed to `out`; raises ConfigError when the hub must not start.
    Shared by the hub and `teamhub check-config` (the pre-upgrade check), so both judge alike."""
    files = [str(p) for p in paths.values_files(environ)]
    path = ", ".join(files)
    mode = environ.get("TEAMHUB_MODE", "kubernetes")
    if mode not in MODES:
        raise ConfigError(f"TEAMHUB_MODE must be one of {', '.join(MODES)}, not {mode!r}", 2)
    # Demo mode only on a laptop: a chart's hub (and its pre-upgrade check) refuses the demo's hashes whatever its env says.
    demo = mode == "local" and environ.get("TEAMHUB_DEMO") == "1"
    try:
        checked = loadvalues.load_forked(files, paths.local_users_file(environ), demo)
    except YamlFileError as exc:
        raise ConfigError(str(exc), 2) from None
    for problem in checked.problems:
        print(problem, file=out)
    if not checked.ok:
        raise ConfigError(f"{path}: invalid: {len(checked.errors)} error(s); the hub does not start", 1)
    if clock.test_clock(environ):
        print(f"teamhub: {clock.TEST_CLOCK_ENV} is set: session deadlines follow a test clock", file=out)
    return checked, mode


def load_from_environment(c, environ=os.environ):
    """Load and validate the values like `teamhub validate`; on errors print them and exit non-zero."""
    try:
        checked, mode = load_checked(environ)
    except ConfigError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    # Back up and migrate the database before JupyterHub opens it; a broken one stops here with a message.
    migrate.prepare_or_exit(checked.values, paths.data_dir(environ))
    rt = configure(c, checked, mode, environ)
    rt.usage = Store(c.JupyterHub.db_url)  # usage records (teamhub/usage/), in the database JupyterHub uses
    from .teamhubmixin import records_held

    rt.usage.close_unconfirmed(records_held(rt.usage.server_states()))
    rt.usage.restore()  # the in-memory ledger metrics and budgets read (teamhub/usage/ledger.py), before serving
    usage_budget.warm(rt.usage, rt.catalog, clock.now())
    usage_metrics.install(rt.usage)  # and the metrics read from them on /hub/metrics
    return rt


def configure(c, checked, mode: str = "kubernetes", environ=os.environ) -> Runtime:
    from . import getsafe, scrape, serverlist, stopandstart, usagepage
    from .launchhandler import LaunchLinkHandler
    from .launchpage import TEMPLATES, options_form
    from .localspawner import TeamhubLocalSpawner
    from .podspawner import TeamhubKubeSpawner
    from .teamhubmixin import apply_user_options, options_from_form

    rt = Runtime(checked, mode)
    refusals.install()  # a refused start is one INFO line, not ERRORs with tracebacks
    values = checked.values
    data_dir = paths.data_dir(environ)

    # --- the hub itself ---------------------------------------------------------------------------
    c.JupyterHub.db_url = settings.backend(values, data_dir, environ).url
    if not environ.get("JPY_COOKIE_SECRET"):
        c.JupyterHub.cookie_secret_file = str(data_dir / "jupyterhub_cookie_secret")
    # Named servers (sessions.namedServers): each goes through the same start check and quota as a default one.
    named = values["sessions"]["namedServers"]  # filled values: the defaults are the schema's
    c.JupyterHub.allow_named_servers = named["enabled"]
    c.JupyterHub.named_server_limit_per_user = named["maxPerPerson"]
    # With the GPU queue, starts waiting in line would fill JupyterHub's limit and 429 everyone after them: the
    # spawner counts concurrentStarts itself then, without them (hub/queueing.py throttle). active_server_limit
    # stays unset: a waiting server would count as active.
    queued = checked.catalog.queue.enabled
    c.JupyterHub.concurrent_spawn_limit = 0 if queued else values["sessions"]["concurrentStarts"]
    # Per-user origins (values/origins.py): each server on <name>.<host>; JupyterHub then asks its proxy to
    # route by host (the chart's proxy runs with --host-routing, the demo's proxy is started with it).
    origin = origins.of_values(values)
    if origin is not None:
        c.JupyterHub.subdomain_host = origin.url
    if environ.get("JUPYTERHUB_CRYPT_KEY"):
        c.Authenticator.enable_auth_state = True  # provider groups (GitHub teams, OIDC groups) live there

    # --- login --------------------------------------------------------------------------------------
    # The hub's own proxy: loopback beside it in local mode; in the chart a separate pod, found through
    # the headless Service named by TEAMHUB_PROXY_PEERS (unset: no peer is trusted to forward addresses).
    own_proxy = LOOPBACK if mode == "local" else environ.get("TEAMHUB_PROXY_PEERS", "")
    auth.configure(c, checked, own_proxy)

    # --- spawning -----------------------------------------------------------------------------------
    c.Spawner.apply_user_options = apply_user_options
    c.TeamhubKubeSpawner.teamhub_runtime = c.TeamhubLocalSpawner.teamhub_runtime = rt
    c.Spawner.options_form = options_form
    c.Spawner.options_from_form = options_from_form
    c.JupyterHub.extra_handlers.append((r"/launch", LaunchLinkHandler))  # launch links (launchhandler.py)
    getsafe.install(c)  # no GET starts or stores a server; SameSite cookies (getsafe.py)
    # hub/templates: the hub's pages (launch, usage) and its overrides of JupyterHub's home.html and spawn.html,
    # so first on JupyterHub's template path.
    c.JupyterHub.template_paths.prepend([str(TEMPLATES)])
    # The templates come with the image and never change under a running hub: Jinja need not stat each file of the
    # launch page's chain (teamhub's and JupyterHub's page.html and spawn.html, servers.html) on every view.
    c.JupyterHub.jinja_environment_options.update({"auto_reload": False})
    serverlist.configure(c)  # the person's servers with Stop on the home and launch pages (serverlist.py)
    stopandstart.configure(c)  # the launch link's "stop it and start this" (stopandstart.py)
    usagepage.register(c, rt)  # the admins' usage page, /hub/usage (hub/usagepage.py)
    stopper.install()  # a stop asked by an admin ends its usage record as `admin` (hub/stopper.py)
    scrape.configure(c, environ)  # the ServiceMonitor's read:metrics token (hub/scrape.py)
    c.Spawner.default_url = "/lab"
    # sessions.budgetCheckSeconds: also how often the hub checks deadlines and budgets (and watches starts)
    c.Spawner.poll_interval = sessions.poll_seconds(checked.catalog.sessions.budget_check_seconds, environ)
    c.Spawner.poll_jitter = 0.1

    if mode == "kubernetes":
        c.JupyterHub.spawner_class = TeamhubKubeSpawner
        c.JupyterHub.cleanup_servers = False  # a hub restart (upgrade) must not stop anyone's server
        c.JupyterHub.hub_ip = "0.0.0.0"
        c.JupyterHub.hub_port = HUB_PORT
        # With a connect URL and no bind URL, JupyterHub binds the connect URL's host: the Service's ClusterIP,
        # which no pod owns (the hub crash-looped with "Cannot assign requested address", issue 31).
        c.JupyterHub.hub_bind_url = hub_bind_url(environ)
        if environ.get("TEAMHUB_HUB_CONNECT_URL"):
            c.JupyterHub.hub_connect_url = environ["TEAMHUB_HUB_CONNECT_URL"]
        c.ConfigurableHTTPProxy.should_start = False
        # hub.baseUrl (e.g. /jupyter/ on a host name shared with other sites): the hub serves itself and routes
        # servers under it; the chart's Ingress, probes and helm test use the same path.
        c.JupyterHub.base_url = base_url(values)
        if environ.get("TEAMHUB_PROXY_API_URL"):
            c.ConfigurableHTTPProxy.api_url = environ["TEAMHUB_PROXY_API_URL"]
        configure_kubernetes(c, values, environ)
        rt.user_scheduler = environ.get("TEAMHUB_USER_SCHEDULER", "")  # the chart names it (user-scheduler/)
    else:
        c.JupyterHub.spawner_class = TeamhubLocalSpawner
        c.JupyterHub.cleanup_servers = True  # Ctrl-C on `teamhub demo` stops everything
        # The base URL is the bind URL's path here: setting base_url beside bind_url would make JupyterHub
        # rebuild the bind URL from its default ip and port.
        c.JupyterHub.bind_url = environ.get("TEAMHUB_BIND_URL", "http://127.0.0.1:8000").rstrip("/") + base_url(values)
        c.JupyterHub.hub_ip = "127.0.0.1"
        if environ.get("TEAMHUB_HUB_PORT"):
            c.JupyterHub.hub_port = int(environ["TEAMHUB_HUB_PORT"])
        if environ.get("TEAMHUB_PROXY_API_PORT"):
            c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(environ['TEAMHUB_PROXY_API_PORT'])}"
        chp = environ.get("TEAMHUB_CHP")
        if chp:
            c.ConfigurableHTTPProxy.command = [chp]
        c.TeamhubLocalSpawner.home_dir_template = str(data_dir / "homes" / "{username}")
        # The pull guard, as the single-user images enable it (dockerfiles/base-*/Dockerfile): nbgitpuller only
        # behind teamhub.pullguard. The demo's servers run from this environment, which has teamhub.
        c.TeamhubLocalSpawner.environment = {"JUPYTER_CONFIG_PATH": str(PULLGUARD_CONFIG)}
        c.Spawner.ip = "127.0.0.1"
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            c.Spawner.args = ["--allow-root"]  # containers and CI often run as root
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 120

    # --- sessions: the idle culler ------------------------------------------------------------------
    # The culler is a process in the hub's pod. JupyterHub hands it hub_connect_url (the hub Service), which
    # the chart's NetworkPolicies rightly do not open from the hub to itself (and which needs hairpin NAT):
    # it calls the hub on loopback, a path that never leaves the pod. Local mode is loopback already.
    hub_api = f"{loopback(hub_bind_url(environ))}{base_url(values)}hub/api" if mode == "kubernetes" else None
    culler = configure_culler(c, checked.catalog.sessions.idle_cull_minutes, hub_api, values, environ)
    gpuwatch.install(rt, culler)  # the hub's side of GPU rules: warnings on its pages, end reason gpu-idle
    freeze_after_start()
    return rt


def freeze_after_start() -> None:
    """Once the hub runs, hide everything alive from the garbage collector (`gc.freeze()`).

    After start-up the hub holds a few hundred thousand long-lived objects (modules, the catalog, SQLAlchemy's
    mappers, templates). A full collection traces all of them: with a large catalog that was a pause of
    150-250 ms every few launch pages, and it held up every other request (issue 12). Frozen objects are
    never traced again; what requests create later is collected as before.
    """
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # configured outside a running hub (tests, tools)
    started = getattr(JupyterHub.instance(), "_start_future", None)  # set by JupyterHub.start() when it is done
    if started is not None:
        started.add_done_callback(lambda _: freeze_gc())


def freeze_gc() -> int:
    gc.collect()  # start-up's garbage first: frozen garbage would never be freed
    gc.freeze()
    count = gc.get_freeze_count()
    logging.getLogger("JupyterHub").info("teamhub: %d start-up objects frozen out of garbage collection", count)
    return count


def configure_culler(c, idle_minutes: int, hub_api: str | None = None, values: dict | None = None,
                     environ=os.environ) -> dict | None:
    """The idle culler as a hub service, started from its traitlets config file (teamhub/culler/idle_culler_config.py)
    with the settings the hub computed (teamhub/culler/settings.py); None when it does not run (no activity
    timeout and no GPU rule). It needs `admin:server_state` only for GPU rules: their pod and launch are in
    the spawner's state."""
    from ..culler import settings as culler_settings

    # every minute; every second under the tests' clock, so a moved clock is acted on at once
    every = sessions.poll_seconds(60, environ)
    settings = culler_settings.build(values or {"catalog": {"accelerators": {}, "resources": {}}}, idle_minutes,
                                     environ.get("POD_NAMESPACE"), every, hub_api)
    gpu_rules = settings["prometheus"] is not None
    if idle_minutes <= 0 and not gpu_rules:
        return None
    env = {culler_settings.ENV: culler_settings.dumps(settings)}
    if clock.test_clock(environ):
        env[clock.TEST_CLOCK_ENV] = str(clock.test_clock(environ))
    c.JupyterHub.services.append({
        "name": stopper.CULLER,
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--config={CULLER_CONFIG}"],
        "environment": env,
    })
    c.JupyterHub.load_roles.append({
        "name": stopper.CULLER,
        "description": "Stop servers idle longer than sessions.idleCullMinutes, or whose GPU idles (catalog idle rules)",
        "scopes": list(CULLER_SCOPES) + (["admin:server_state"] if gpu_rules else []),
        "services": [stopper.CULLER],
    })
    return settings


def storage_settings(values: dict) -> dict:
    """Per-user storage from `singleuser.storage` (the loader filled in the schema's defaults)."""
    storage = values["singleuser"]["storage"]
    return {  # key names as in the schema's singleuser.storage
        "enabled": storage["type"] != "none",
        "capacity": str(storage["capacity"]),
        "storageClass": storage["storageClass"] or None,  # "": the cluster's default class
        "mountPath": storage["homeMountPath"],
    }


def configure_kubernetes(c, values: dict, environ=os.environ) -> None:
    # User servers (and their home PVCs) in singleuser.namespace when set (the GPU queue needs it: Kueue's pod
    # webhook fails closed there), else beside the hub.
    namespace = values["singleuser"]["namespace"] or environ.get("POD_NAMESPACE")
    if namespace:
        c.KubeSpawner.namespace = namespace
    c.KubeSpawner.start_timeout = 600
    c.KubeSpawner.http_timeout = 120
    c.KubeSpawner.pod_name_template = POD_NAME_TEMPLATE
    # The chart's NetworkPolicies select user pods by TEAMHUB_USER_POD_LABELS: without them a server
    # cannot reach the hub.
    chart_labels = json.loads(environ.get("TEAMHUB_USER_POD_LABELS") or "{}")
    # (KubeSpawner itself sets app.kubernetes.io/component: singleuser-server, which the chart expects.)
    c.KubeSpawner.common_labels = {"app.kubernetes.io/part-of": "teamhub", **chart_labels}
    if namespace and "app.kubernetes.io/instance" in chart_labels:  # labels that are this release's alone
        from . import strays

        strays.install(namespace, c.KubeSpawner.common_labels)  # pods no server names (hub/strays.py)
    c.KubeSpawner.delete_pvc = False  # home folders outlive user deletion; the hub's Role cannot delete PVCs anyway
    storage = storage_settings(values)
    if storage["enabled"]:
        c.KubeSpawner.storage_pvc_ensure = True
        c.KubeSpawner.storage_capacity = storage["capacity"]
        if storage["storageClass"]:
            c.KubeSpawner.storage_class = storage["storageClass"]
        c.KubeSpawner.pvc_name_template = PVC_NAME_TEMPLATE
        c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
        c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": storage["mountPath"]}]
    else:
        c.KubeSpawner.storage_pvc_ensure = False
