"""PostgreSQL (`hub.db.type: postgres`): `hub.db.url` with the password from env `TEAMHUB_DB_PASSWORD`.

Backups are `pg_dump --format=custom` files, put back with `pg_restore`; a restore first dumps the current
database to the backups. A migration without a successful dump is refused (set env
`TEAMHUB_DB_BACKUP_DONE=<alembic revision>` after taking your own backup to proceed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from . import backups
from .backend import Backend, DatabaseError


class PostgreSQL(Backend):
    type = "postgres"
    ext = "pgdump"
    id_column = "SERIAL PRIMARY KEY"

    @classmethod
    def from_settings(cls, db: dict, data_dir: Path, backup_dir: Path, keep: int, env) -> PostgreSQL:
        """`postgres://` and `postgresql://` become `postgresql+psycopg2://`; the password comes from the env,
        then `hub.db.password`, then the URL, and is shown as `***`."""
        raw = db.get("url") or ""
        if not raw:
            raise DatabaseError("hub.db.type is postgres but hub.db.url is empty")
        parts = urlsplit(raw)
        scheme = "postgresql+psycopg2" if parts.scheme in ("postgres", "postgresql") else parts.scheme
        password = env.get("TEAMHUB_DB_PASSWORD") or db.get("password") or parts.password or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc_base = f"{host}{f':{parts.port}' if parts.port else ''}"
        user = parts.username or ""
        netloc = f"{quote(user, safe='')}{':' + quote(password, safe='') if password else ''}@{netloc_base}" if user else netloc_base
        shown = f"{quote(user, safe='')}{':***' if password else ''}@{netloc_base}" if user else netloc_base
        url = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
        return cls(url, urlunsplit((scheme, shown, parts.path, parts.query, "")), data_dir, backup_dir, keep)

    def connect_args(self) -> dict:
        return {"connect_timeout": 10}

    def present(self) -> bool:
        return True  # an empty database reads as new (no tables), an unreachable one fails in read_error

    def read_error(self, exc: Exception) -> DatabaseError:
        return DatabaseError(f"cannot read the hub database at {self.display_url}: {str(exc).splitlines()[0]}")

    def copy_to(self, out: Path) -> None:
        args, env = self._client()
        r = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(out), *args],
                           env=env, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise DatabaseError(f"pg_dump failed: {r.stderr.strip()}")

    def migration_backup(self, revision: str, head: str, env, say) -> backups.Backup | None:
        done = env.get("TEAMHUB_DB_BACKUP_DONE", "")
        try:
            return backups.backup(self, revision)
        except DatabaseError as exc:
            if done != revision:
                raise DatabaseError(f"the hub database needs a schema upgrade ({revision} -> {head}) and no backup could be taken "
                                    f"({exc}). Refusing to migrate without a backup: fix the dump, or take your own backup and "
                                    f"set env TEAMHUB_DB_BACKUP_DONE={revision} on the hub.") from exc
            say(f"no dump taken ({exc}); proceeding because TEAMHUB_DB_BACKUP_DONE={revision}")
            return None

    def set_aside(self) -> Path:
        try:
            return backups.backup(self).path
        except DatabaseError as exc:
            raise DatabaseError(f"refusing to restore: the current database could not be kept first ({exc})") from exc

    def put_back(self, backup: Path) -> None:
        args, env = self._client()
        r = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(backup)],
                           env=env, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise DatabaseError(f"pg_restore of {backup} failed: {r.stderr.strip()}")

    def _client(self) -> tuple[list[str], dict]:
        """pg_dump's and pg_restore's connection: the whole URL as `--dbname` (libpq's parameters in its query, such as
        sslmode, sslrootcert or sslcert, reach them as they reach the hub), the password only in their env."""
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        env = dict(os.environ)
        if u.password:
            env["PGPASSWORD"] = u.password
        host = u.host or "localhost"
        host = f"[{host}]" if ":" in host else host
        netloc = f"{quote(u.username or 'postgres', safe='')}@{host}:{u.port or 5432}"
        query = urlencode([(k, v) for k, vs in u.query.items() for v in (vs if isinstance(vs, tuple) else (vs,))])
        return [f"--dbname={urlunsplit(('postgresql', netloc, '/' + quote(u.database or 'postgres', safe=''), query, ''))}"], env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    raise DatabaseError(f"{name} is not installed: cannot back up or restore the PostgreSQL database")
