"""SQLite on the data volume (`hub.db.type: sqlite-pvc`): `<data_dir>/jupyterhub.sqlite`.

Backups use the sqlite3 online backup API and are integrity-checked; a restore renames the current file to
`jupyterhub.sqlite.replaced-<time>` and copies the backup in its place. A file that is unreadable or corrupted
is refused with the newest backup named (never a traceback in a crash loop).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from . import backups
from .backend import Backend, DatabaseError, now

DB_FILE = "jupyterhub.sqlite"


class SQLite(Backend):
    type = "sqlite-pvc"
    ext = "sqlite"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    copy_errors = (OSError, sqlite3.Error)

    @classmethod
    def from_settings(cls, db: dict, data_dir: Path, backup_dir: Path, keep: int, env) -> SQLite:
        path = data_dir / DB_FILE
        url = f"sqlite:///{path}"
        return cls(url, url, data_dir, backup_dir, keep, path)

    def exists(self) -> bool:
        return bool(self.path and self.path.exists())

    def ready(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def present(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        self._check_file()
        return True

    def _check_file(self) -> None:
        """Clear errors for a database file that is unreadable or corrupted."""
        path = self.path
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseError(f"the hub database {path} is not readable and writable by uid {os.getuid()}; "
                                "fix the volume's ownership (the hub runs as uid 1000)")
        try:
            with open(path, "rb") as f:
                header = f.read(16)
        except OSError as exc:
            raise DatabaseError(f"the hub database {path} cannot be read ({exc.strerror or exc}); the hub will not start on it") from exc
        if path.stat().st_size and header != b"SQLite format 3\x00":
            raise DatabaseError(self._corrupt_message("the file is not an SQLite database"))
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                result = con.execute("PRAGMA integrity_check").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(self._corrupt_message(str(exc))) from exc
        if result != [("ok",)]:
            raise DatabaseError(self._corrupt_message("; ".join(r[0] for r in result[:3])))

    def _corrupt_message(self, why: str) -> str:
        found = backups.list_backups(self)
        hint = (f" The newest backup is {found[-1].path}; restore it with `teamhub db restore {found[-1].path.name} --now`"
                " (the damaged file is kept beside it) and restart the hub."
                if found else " No backup exists in " + str(self.backup_dir) + ".")
        return f"the hub database {self.path} is corrupted or unreadable ({why}). The hub will not start on it.{hint}"

    def read_error(self, exc: Exception) -> DatabaseError:
        return DatabaseError(self._corrupt_message(str(exc).splitlines()[0]))

    def copy_to(self, out: Path) -> None:
        src = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        con = sqlite3.connect(out)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
        if not ok:
            raise DatabaseError(f"the backup {out} failed its integrity check")

    def migration_backup(self, revision: str, head: str, env, say) -> backups.Backup:
        # no way around a failed copy (unlike PostgreSQL's TEAMHUB_DB_BACKUP_DONE): the file is on the hub's own volume
        return backups.backup(self, revision)

    def set_aside(self) -> Path | None:
        if not self.path.exists():
            return None
        kept = self.path.with_name(f"{self.path.name}.replaced-{now()}")
        self.path.rename(kept)
        return kept

    def put_back(self, backup: Path) -> None:
        restoring = self.path.with_name(self.path.name + ".restoring")
        shutil.copyfile(backup, restoring)
        restoring.rename(self.path)
