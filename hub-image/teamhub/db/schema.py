"""JupyterHub's schema: the installed JupyterHub's alembic head, and the revision a database is at."""

from __future__ import annotations

from .backend import Backend, DatabaseError


def jupyterhub_version() -> str:
    import jupyterhub

    return jupyterhub.__version__


def _scripts():
    from alembic.script import ScriptDirectory
    from jupyterhub import dbutil

    return ScriptDirectory(dbutil.ALEMBIC_DIR)


def head_revision() -> str:
    return _scripts().get_heads()[0]


def known_revision(rev: str) -> bool:
    try:
        return _scripts().get_revision(rev) is not None
    except Exception:
        return False


def db_revision(s: Backend) -> str | None:
    """The alembic revision stored in the database; None for an empty or new database."""
    from sqlalchemy import inspect, text

    if not s.present():
        return None
    try:
        engine = s.engine()
        try:
            with engine.connect() as con:
                tables = set(inspect(con).get_table_names())
                if "alembic_version" not in tables:
                    return None if "users" not in tables else "none"
                row = con.execute(text("SELECT version_num FROM alembic_version")).first()
                return row[0] if row else "none"
        finally:
            engine.dispose()
    except DatabaseError:
        raise
    except Exception as exc:
        raise s.read_error(exc) from exc
