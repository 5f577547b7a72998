"""The table `teamhub_db_log` inside the hub database: every start, creation, migration and restore, with the
JupyterHub version, the schema and the helm revision (paths.release_revision), so `teamhub db status` can tell
which JupyterHub last migrated the database and a rollback which schema each revision runs."""

from __future__ import annotations

from .. import paths
from .backend import Backend, now
from .schema import jupyterhub_version

LOG_TABLE = "teamhub_db_log"
COLUMNS = ("at", "event", "jupyterhub_version", "alembic_revision", "release_revision", "backup", "note")


def write_log(s: Backend, event: str, revision: str | None, backup: str = "", note: str = "") -> None:
    from sqlalchemy import text

    engine = s.engine()
    try:
        with engine.begin() as con:
            con.execute(text(f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (id {s.id_column}, at VARCHAR(32), event VARCHAR(16), "
                             "jupyterhub_version VARCHAR(32), alembic_revision VARCHAR(32), release_revision VARCHAR(16), "
                             "backup VARCHAR(255), note VARCHAR(255))"))
            con.execute(text(f"INSERT INTO {LOG_TABLE} (at, event, jupyterhub_version, alembic_revision, release_revision, backup, note) "
                             "VALUES (:at, :event, :v, :rev, :rr, :b, :n)"),
                        {"at": now(), "event": event, "v": jupyterhub_version(), "rev": revision or "",
                         "rr": paths.release_revision(), "b": backup, "n": note[:255]})
    finally:
        engine.dispose()


def read_log(s: Backend) -> list[dict]:
    from sqlalchemy import inspect, text

    if not s.exists():
        return []
    engine = s.engine()
    try:
        with engine.connect() as con:
            if LOG_TABLE not in inspect(con).get_table_names():
                return []
            rows = con.execute(text(f"SELECT {', '.join(COLUMNS)} FROM {LOG_TABLE} ORDER BY id")).all()
    finally:
        engine.dispose()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def writer_version(s: Backend, revision: str | None) -> str:
    """The JupyterHub version that last wrote the database (from the log), else a name from its revision."""
    for entry in reversed(read_log(s)):
        if entry["alembic_revision"] == (revision or ""):
            return entry["jupyterhub_version"]
    return "unknown"
