"""Which database the hub uses, from `hub.db` of the values: the backend, chosen here once.

`sqlite-pvc` (default): `<data_dir>/jupyterhub.sqlite` (sqlite.py); `postgres`: `hub.db.url` with the password
from env `TEAMHUB_DB_PASSWORD` (postgres.py). Backups go to `<data_dir>/backups/` unless `hub.db.backupDir`
says otherwise, `hub.db.keepBackups` of them (backups.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import paths
from ..values.schema import with_defaults
from .backend import Backend, DatabaseError
from .postgres import PostgreSQL
from .sqlite import SQLite

BACKENDS: dict[str, type[Backend]] = {b.type: b for b in (SQLite, PostgreSQL)}


def backend(values: dict | None, data_dir: str | Path | None = None, env=None) -> Backend:
    """`values` as the loader returns them; partial values (scripts, tests) get the schema's defaults here."""
    env = os.environ if env is None else env
    db = with_defaults(values or {})["hub"]["db"]
    data_dir = Path(data_dir or paths.data_dir(env))
    backup_dir = Path(db["backupDir"] or data_dir / "backups")  # "": backups/ on the data volume
    keep = int(db["keepBackups"])
    if keep < 1:
        raise DatabaseError("hub.db.keepBackups must be at least 1")
    kind = db["type"]
    if kind not in BACKENDS:
        raise DatabaseError(f"hub.db.type must be sqlite-pvc or postgres, not {kind!r}")
    return BACKENDS[kind].from_settings(db, data_dir, backup_dir, keep, env)


def load_values(path: str | Path | None = None) -> dict:
    """The values file through the one reader (values.source) with the schema's defaults filled in. Not the
    whole check: `teamhub db` reads only hub.db, and must work on a database whatever else the values hold."""
    from ..values.source import YamlFileError, read_file

    path = Path(path or paths.values_file())
    try:
        source = read_file(path)
    except YamlFileError as exc:
        raise DatabaseError(f"cannot read the values file {path}: {exc}") from exc
    if source.unparsed:
        raise DatabaseError("\n".join(map(str, source.problems)))
    return with_defaults(source.data)
