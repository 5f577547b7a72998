"""`teamhub check-config`: would a hub started from this environment come up? Run by the chart's
pre-install/pre-upgrade hook Job (chart/templates/hub/upgrade-check.yaml) with the NEW hub image, the NEW
values and the hub pod's placement, security context and resources, while the old hub keeps serving.

It loads the values with the hub's own loader and configuration code (teamhub.hub.config: load_checked,
configure), then asks the database what the new JupyterHub would do with it (teamhub.db.plan: status,
upgrade_plan) without changing it. Exit: 0 the hub would start, 1 invalid values, 2 unreadable values or bad
environment, 3 the database would stop the hub.
"""

from __future__ import annotations

import os
import sys


def database_check(values: dict, environ=os.environ) -> tuple[bool, str]:
    """(ok, sentence): the database as the new hub would find it, read-only."""
    from .. import paths
    from ..db import plan, schema, settings

    s = settings.backend(values, paths.data_dir(environ), environ)
    if not s.exists():  # only a database file can be missing
        # The SQLite volume is ReadWriteOnce and held by the running hub, so the hook does not mount it;
        # scripts/helm_update.sh asks the running hub for its schema instead (teamhub db status).
        return True, (f"database: SQLite at {s.display_url} is not mounted here (the running hub holds its volume); "
                      "the hub backs it up before any schema upgrade at start")
    st = plan.status(s)
    if st["error"]:
        return False, f"database: the hub would not start: {st['error']}"
    upgrade = plan.upgrade_plan(st)
    rev = st["revision"]
    if rev and rev != st["head_revision"] and not schema.known_revision(rev):
        return False, upgrade  # a database newer than this JupyterHub: the hub would refuse it at start
    return True, upgrade


def cmd_check_config(args) -> int:
    from traitlets.config import Config

    from ..hub import config

    environ = dict(os.environ)
    if args.values:
        environ["TEAMHUB_VALUES"] = args.values
    try:
        checked, mode = config.load_checked(environ)
    except config.ConfigError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return exc.code
    from ..auth.setup import AuthConfigError

    try:
        config.configure(Config(), checked, mode, environ)  # the hub's own configuration code, on a throwaway Config
    except AuthConfigError as exc:  # e.g. the OIDC provider cannot be read: the hub would stop here too
        print(f"teamhub: the hub would not start: {exc}", file=sys.stderr)
        return 1
    print(f"configuration: the hub would start ({len(checked.catalog.resources)} resources, "
          f"{len(checked.catalog.teams)} teams, {len(checked.warnings)} warning(s))")
    if args.skip_database:
        return 0
    ok, sentence = database_check(checked.values, environ)
    print(sentence, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 3


def register(sub) -> None:
    p = sub.add_parser("check-config", help="would a hub start from this environment? (the chart's pre-upgrade check)")
    p.add_argument("--values", help="values file (default env TEAMHUB_VALUES, as the hub reads it)")
    p.add_argument("--skip-database", action="store_true", help="check only the configuration")
    p.set_defaults(func=cmd_check_config)
