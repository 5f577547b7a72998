"""`teamhub db`: status, backup, upgrade and restore of the hub database (teamhub.db), and the plans that
scripts/helm_update.sh (`plan`) and scripts/rollback.sh (`rollback-plan`) ask for."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..db import backups, migrate, plan, settings
from ..db.backend import DatabaseError, now


def values_or_empty(args) -> dict:
    """The values of `--values` or TEAMHUB_VALUES for a database command (`teamhub db`, `teamhub usage`); none: {}."""
    return settings.load_values(args.values) if (args.values or os.environ.get("TEAMHUB_VALUES")) else {}


def cmd_db(args) -> int:
    try:
        if args.db_command == "plan":
            st = json.loads(Path(args.status_json).read_text() or "{}") if args.status_json else {}
            print(plan.upgrade_plan(st))
            return 0
        if args.db_command == "rollback-plan":
            st = json.loads(Path(args.status_json).read_text() or "{}")
            rollback = plan.rollback_plan(st, args.target, args.target_version)
            if args.backup_only:
                print(rollback.get("backup", ""))
            else:
                print(json.dumps(rollback) if args.json else rollback["message"])
            return 0
        s = settings.backend(values_or_empty(args), args.data_dir)
        if args.db_command == "status":
            st = plan.status(s)
            if args.json:
                print(json.dumps(st))
            else:
                print(f"database: {st['url']} ({st['type']}), schema {st['revision'] or '(new)'}; "
                      f"installed JupyterHub {st['jupyterhub_version']} uses {st['head_revision']}")
                if st["error"]:
                    print(f"problem: {st['error']}")
                for b in st["backups"]:
                    print(f"backup: {b['path']}  (JupyterHub {b['jupyterhub_version']}, schema {b['alembic_revision']})")
            return 1 if st["error"] else 0
        if args.db_command == "backup":
            print(backups.backup(s).path)
            return 0
        if args.db_command == "upgrade":
            r = migrate.prepare(values_or_empty(args), args.data_dir)
            print(f"schema {r.revision}" + (f" (migrated, backup {r.backup})" if r.migrated else ""))
            return 0
        if args.db_command == "restore":
            if args.cancel:
                req = s.data_dir / backups.RESTORE_REQUEST
                if req.exists():
                    req.rename(req.with_name(req.name + f".cancelled-{now()}"))
                print("no restore is scheduled")
                return 0
            if not args.backup:
                print("teamhub: name a backup (see `teamhub db status`) or give --cancel", file=sys.stderr)
                return 2
            if args.now:
                kept = backups.restore(s, args.backup)
                print(f"restored {args.backup}" + (f"; the replaced database is kept as {kept}" if kept else ""))
            else:
                f = backups.request_restore(s, args.backup)
                print(f"{args.backup} will be restored by the next hub that starts with its schema (request: {f})")
            return 0
    except DatabaseError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 1
    return 2


def register(sub) -> None:
    p = sub.add_parser("db", help="the hub database: status, backups, upgrade, restore")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    common = []
    for name, text in (("status", "schema, backups and log of the database"), ("backup", "take a backup now"),
                       ("upgrade", "what the hub does at start: back up, then migrate when needed"),
                       ("restore", "restore a backup (at the next matching hub start, or --now with the hub stopped)")):
        q = dbsub.add_parser(name, help=text)
        q.add_argument("--values", help="values file (default env TEAMHUB_VALUES; without either: SQLite defaults)")
        q.add_argument("--data-dir", help="hub data folder (default env TEAMHUB_DATA_DIR or /srv/teamhub/data)")
        common.append(q)
    common[0].add_argument("--json", action="store_true")
    common[3].add_argument("backup", nargs="?", help="backup file name (see `teamhub db status`)")
    common[3].add_argument("--cancel", action="store_true", help="cancel a scheduled restore")
    common[3].add_argument("--now", action="store_true", help="restore immediately (the hub must not be running)")
    q = dbsub.add_parser("plan", help="for helm_update.sh: will deploying this tree migrate the running hub's database?")
    q.add_argument("--status-json", help="output of `teamhub db status --json` from the running hub")
    q = dbsub.add_parser("rollback-plan", help="for rollback.sh: does rolling back to a revision need a restore?")
    q.add_argument("--status-json", required=True)
    q.add_argument("--target", required=True, help="the helm revision rolled back to")
    q.add_argument("--target-version", help="the JupyterHub version that revision runs, when known")
    q.add_argument("--json", action="store_true")
    q.add_argument("--backup-only", action="store_true", help="print only the name of the backup to restore (empty: none)")
    p.set_defaults(func=cmd_db)
