"""Make the database ready before JupyterHub opens it: `prepare`, called by the hub (teamhub.hub.config)::

    from teamhub.db import migrate
    db = migrate.prepare(values, data_dir)        # raises backend.DatabaseError with a clear message
    c.JupyterHub.db_url = db.url

`prepare` applies a restore that an operator scheduled (`teamhub db restore`), refuses a corrupted or unreadable
database, and when the installed JupyterHub needs a newer schema it first takes a backup (the backend's
`migration_backup`), then upgrades with JupyterHub's own alembic migrations, then teamhub's usage tables. A
database newer than the installed JupyterHub (a rollback after a migration) is refused with the matching backup
named. Every start, migration and restore is written to the log table (log.py).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import compat
from .backend import Backend, DatabaseError, now
from .backups import RESTORE_REQUEST, matching_backup, restore
from .log import write_log, writer_version
from .schema import db_revision, head_revision, jupyterhub_version, known_revision
from .settings import backend, load_values


@dataclass
class Prepared:
    url: str
    display_url: str
    type: str
    revision_before: str | None
    revision: str
    migrated: bool = False
    backup: str | None = None
    restored: str | None = None
    messages: list = field(default_factory=list)


def prepare(values: dict | None = None, data_dir: str | Path | None = None, *, log=None, env=None) -> Prepared:
    """Make the database ready for the installed JupyterHub; see the module docstring. teamhub's own tables
    (usage records, teamhub/usage/store.py) are migrated after JupyterHub's, so the same backup covers them."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..usage import store as usage_store

    result = _prepare_jupyterhub(values, data_dir, log=log, env=env)
    try:
        usage_store.migrate(result.url)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot create or migrate teamhub's usage tables in {result.display_url}: "
                            f"{str(exc).splitlines()[0]}") from exc
    return result


def _prepare_jupyterhub(values: dict | None = None, data_dir: str | Path | None = None, *, log=None, env=None) -> Prepared:
    env = os.environ if env is None else env
    say = log or (lambda msg: print(f"[teamhub.database] {msg}", file=sys.stderr, flush=True))
    if values is None:
        values = load_values(env.get("TEAMHUB_VALUES"))
    s = backend(values, data_dir, env)
    s.ready()
    head = head_revision()
    restored = None
    req = s.data_dir / RESTORE_REQUEST
    if req.exists():
        wanted = json.loads(req.read_text())
        if wanted.get("alembic_revision") == head:
            say(f"restoring {wanted['backup']} as requested before the rollback")
            kept = restore(s, wanted["backup"])
            restored = wanted["backup"]
            req.rename(req.with_name(req.name + f".done-{now()}"))
            if kept:
                say(f"the replaced database is kept as {kept}")
        else:
            say(f"a restore of {wanted.get('backup')} is requested for schema {wanted.get('alembic_revision')}; "
                f"this JupyterHub ({jupyterhub_version()}) uses {head}: leaving it for the matching hub")
    rev = db_revision(s)
    result = Prepared(s.url, s.display_url, s.type, rev, head, restored=restored)
    if rev is None:
        say(f"new database at {s.display_url}: JupyterHub {jupyterhub_version()} creates it at schema {head}")
        write_log(s, "create", head)  # JupyterHub stamps a database without its own tables at its head
        return result
    if rev == head:
        write_log(s, "start", rev)
        return result
    if rev != "none" and not known_revision(rev):
        match = matching_backup(s, head)
        writer = writer_version(s, rev)
        msg = (f"the hub database at {s.display_url} has schema {rev}, written by JupyterHub {writer}, newer than this "
               f"JupyterHub {jupyterhub_version()} knows (schema {head}): this happens after rolling back past a database "
               "migration. ")
        if match:
            msg += (f"The matching backup is {match.path}; restore it with `teamhub db restore {match.path.name} --now` "
                    "(the newer database is kept beside it), or run scripts/rollback.sh which does this for you.")
        else:
            msg += f"No backup at schema {head} exists in {s.backup_dir}; roll forward to the newer release instead."
        raise DatabaseError(msg)
    # an older schema: back up, then migrate
    taken = s.migration_backup(rev, head, env, say)
    if taken:
        say(f"backed up the database (schema {rev}) to {taken.path}")
    _upgrade(s)
    after = db_revision(s)
    if after != head:
        raise DatabaseError(f"the schema upgrade of {s.display_url} ended at {after}, not {head}; the backup is {taken and taken.path}")
    write_log(s, "migrate", head, backup=taken.path.name if taken else "", note=f"from {rev}")
    say(f"upgraded the database schema {rev} -> {head} for JupyterHub {jupyterhub_version()}")
    result.migrated = True
    result.backup = str(taken.path) if taken else None
    return result


def _upgrade(s: Backend) -> None:
    import alembic.command
    import alembic.config

    with compat.temp_alembic_ini(s.url) as ini:
        cfg = alembic.config.Config(ini)
        try:
            alembic.command.upgrade(cfg, "head")
        except Exception as exc:
            raise DatabaseError(f"the schema upgrade of {s.display_url} failed: {exc}. Restore the backup with `teamhub db restore`.") from exc


def prepare_or_exit(values: dict | None = None, data_dir: str | Path | None = None, hold_seconds: float | None = None) -> Prepared:
    """`prepare`, but a DatabaseError ends the process with the message and no traceback. The process waits
    `hold_seconds` (env TEAMHUB_DB_ERROR_HOLD_SECONDS, default 300) first, so the pod stays up for
    `kubectl exec ... teamhub db restore` and restarts slowly instead of crash-looping."""
    try:
        return prepare(values, data_dir)
    except DatabaseError as exc:
        print(f"\nteamhub: the hub cannot start: {exc}\n", file=sys.stderr, flush=True)
        import time

        time.sleep(float(os.environ.get("TEAMHUB_DB_ERROR_HOLD_SECONDS", 300) if hold_seconds is None else hold_seconds))
        raise SystemExit(3) from None
