"""Backups of the hub database: names, taking one, rotation, restores now or at the next matching hub start.

Backups live in `<data_dir>/backups/` (`hub.db.backupDir` overrides). Each is named after the JupyterHub version
that wrote the database and its alembic revision: `jupyterhub-5.4.3.rev-4621fec11365.20261122T101500Z.sqlite`
(`.pgdump`); how the copy is made and put back is the backend's (sqlite.py, postgres.py). Rotation keeps the
newest `hub.db.keepBackups` (default 5) and, beyond that, the newest backup of every schema revision, and never
deletes the last one.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .backend import Backend, DatabaseError, now
from .log import write_log, writer_version
from .schema import db_revision

RESTORE_REQUEST = "restore-request.json"
BACKUP_RE = re.compile(r"^jupyterhub-(?P<version>[^.][^/]*?)\.rev-(?P<rev>[0-9a-f]+|none)\.(?P<at>\d{8}T\d{6}Z)(?:-\d+)?\.(?P<ext>sqlite|pgdump)$")


@dataclass
class Backup:
    path: Path
    jupyterhub_version: str
    alembic_revision: str
    at: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def list_backups(s: Backend) -> list[Backup]:
    """Backups, oldest first."""
    out = []
    if s.backup_dir.is_dir():
        for f in s.backup_dir.iterdir():
            m = BACKUP_RE.match(f.name)
            if m and f.is_file():
                out.append(Backup(f, m["version"], m["rev"], m["at"]))
    return sorted(out, key=lambda b: (b.at, b.path.name))


def backup(s: Backend, revision: str | None = None, version: str | None = None) -> Backup:
    """Take a backup now and rotate old ones. Raises DatabaseError when it cannot be taken."""
    if revision is None:
        revision = db_revision(s)
    version = version or writer_version(s, revision)
    s.backup_dir.mkdir(parents=True, exist_ok=True)
    at = now()
    target = s.backup_dir / f"jupyterhub-{version}.rev-{revision or 'none'}.{at}.{s.ext}"
    n = 1
    while target.exists():
        target = s.backup_dir / f"jupyterhub-{version}.rev-{revision or 'none'}.{at}-{n}.{s.ext}"
        n += 1
    partial = target.with_name(target.name + ".partial")
    try:
        s.copy_to(partial)
        partial.rename(target)
    except s.copy_errors as exc:
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"cannot back up the hub database to {target}: {exc}") from exc
    except DatabaseError:
        partial.unlink(missing_ok=True)
        raise
    rotate(s)
    m = BACKUP_RE.match(target.name)
    return Backup(target, m["version"], m["rev"], m["at"])


def rotate(s: Backend) -> list[Path]:
    """Delete old backups: keep the newest `keep`, the newest of every schema revision, and never the last one."""
    backups = list_backups(s)
    keep = {b.path for b in backups[-s.keep:]}
    newest_per_rev = {}
    for b in backups:
        newest_per_rev[b.alembic_revision] = b.path
    keep |= set(newest_per_rev.values())
    deleted = []
    for b in backups:
        if b.path not in keep and len(backups) - len(deleted) > 1:
            b.path.unlink()
            deleted.append(b.path)
    return deleted


def find_backup(s: Backend, name: str) -> Backup:
    for b in list_backups(s):
        if b.path.name == name or str(b.path) == name:
            return b
    raise DatabaseError(f"no backup named {name} in {s.backup_dir}")


def matching_backup(s: Backend, revision: str) -> Backup | None:
    """The newest backup at a given schema revision."""
    found = [b for b in list_backups(s) if b.alembic_revision == revision]
    return found[-1] if found else None


def restore(s: Backend, name: str) -> Path | None:
    """Put a backup in place now (the hub must be stopped). The current database is kept beside it (the
    backend's `set_aside`: SQLite renamed to `jupyterhub.sqlite.replaced-<time>`, PostgreSQL dumped to the
    backups first). Returns where the replaced database was kept."""
    b = find_backup(s, name)
    kept = s.set_aside()
    s.put_back(b.path)
    write_log(s, "restore", b.alembic_revision, backup=b.path.name, note=f"replaced database kept as {kept}" if kept else "")
    return kept


def request_restore(s: Backend, name: str) -> Path:
    """Schedule a restore for the next hub start (used before a rollback: the new hub is still running)."""
    b = find_backup(s, name)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    f = s.data_dir / RESTORE_REQUEST
    f.write_text(json.dumps({"backup": b.path.name, "alembic_revision": b.alembic_revision, "requested": now()}))
    return f
