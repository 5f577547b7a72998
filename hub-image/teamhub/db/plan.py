"""What the operator scripts ask about the database. `status` is what the running hub reports
(`teamhub db status --json`); from it, `upgrade_plan` tells scripts/helm_update.sh whether deploying this tree
will migrate (`teamhub db plan`), and `rollback_plan` tells scripts/rollback.sh whether rolling back to a helm
revision needs a restore and of which backup (`teamhub db rollback-plan`)."""

from __future__ import annotations

from pathlib import Path

from .backend import Backend, DatabaseError
from .backups import list_backups
from .log import read_log
from .postgres import PostgreSQL
from .schema import db_revision, head_revision, jupyterhub_version, known_revision
from .settings import BACKENDS


def status(s: Backend) -> dict:
    out = {"type": s.type, "url": s.display_url, "backup_dir": str(s.backup_dir), "jupyterhub_version": jupyterhub_version(),
           "head_revision": head_revision(), "error": None, "revision": None, "log": [], "backups": []}
    try:
        out["revision"] = db_revision(s)
        out["log"] = read_log(s)
    except DatabaseError as exc:
        out["error"] = str(exc)
    out["backups"] = [b.to_dict() for b in list_backups(s)]
    out["needs_migration"] = bool(out["revision"] and out["revision"] != out["head_revision"] and known_revision(out["revision"]))
    migrations = [e for e in out["log"] if e["event"] in ("migrate", "restore")]
    out["last_migrated_by"] = migrations[-1]["jupyterhub_version"] if migrations else None
    return out


def upgrade_plan(status_: dict, head: str | None = None, version: str | None = None) -> str:
    """What deploying this tree's JupyterHub will do to the database described by `status_` (from the running hub)."""
    head = head or head_revision()
    version = version or jupyterhub_version()
    rev = status_.get("revision")
    where = status_.get("backup_dir")
    if status_.get("error"):
        return f"database: the running hub reports a problem: {status_['error']}"
    if not rev:
        return f"database: new or empty; JupyterHub {version} creates it (no migration)"
    if rev == head:
        return f"database: schema {rev} already matches JupyterHub {version}: no migration"
    if known_revision(rev):
        ext = BACKENDS.get(status_.get("type"), PostgreSQL).ext
        return (f"database: WILL BE MIGRATED from schema {rev} (JupyterHub {status_.get('jupyterhub_version')}) to {head} "
                f"(JupyterHub {version}); the hub backs it up first to {where}/jupyterhub-{status_.get('jupyterhub_version')}"
                f".rev-{rev}.<time>.{ext}")
    return (f"database: schema {rev} is newer than JupyterHub {version} knows ({head}); the new hub will refuse it "
            "unless a matching backup is restored")


def rollback_plan(status_: dict, target_release_revision: str | int, target_version: str | None = None) -> dict:
    """Whether rolling back to a release revision needs a database restore, and which backup matches.

    The target's schema comes from the log (the hub records its JupyterHub version and schema, and the helm
    revision from paths.release_revision, at every start), or from `target_version` when given."""
    rev = status_.get("revision")
    log = status_.get("log") or []
    target_schema = None
    target_jh = target_version
    for e in log:
        if (target_version and e["jupyterhub_version"] == target_version) or \
           (not target_version and str(e.get("release_revision") or "") == str(target_release_revision)):
            target_schema, target_jh = e["alembic_revision"], e["jupyterhub_version"]
    if target_schema is None:
        return {"restore": False, "known": False,
                "message": f"cannot tell which JupyterHub revision {target_release_revision} runs (not in the database log); "
                           "if its hub refuses the database, restore a backup with `teamhub db restore NAME --now`"}
    if target_schema == rev:
        return {"restore": False, "known": True,
                "message": f"database: schema {rev} also fits JupyterHub {target_jh} of revision {target_release_revision}: no restore"}
    matches = [b for b in status_.get("backups") or [] if b["alembic_revision"] == target_schema]
    if not matches:
        return {"restore": False, "known": True, "blocked": True,
                "message": f"revision {target_release_revision} runs JupyterHub {target_jh} (schema {target_schema}) but the database was "
                           f"migrated to {rev} by JupyterHub {status_.get('last_migrated_by')}, and no backup at {target_schema} exists"}
    b = matches[-1]
    return {"restore": True, "known": True, "backup": Path(b["path"]).name, "backup_path": b["path"],
            "message": f"revision {target_release_revision} runs JupyterHub {target_jh} (schema {target_schema}), older than JupyterHub "
                       f"{status_.get('last_migrated_by') or status_.get('jupyterhub_version')} that migrated the database to {rev}. "
                       f"Matching backup: {b['path']} (taken {b['at']}). Restoring it keeps the newer database beside it."}
