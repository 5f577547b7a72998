"""The hub database: where it is, backups before every schema change, the upgrade itself, and restores.

Entry point for the hub (called by jupyterhub_config.py before JupyterHub starts)::

    from teamhub.db import database
    db = database.prepare(values, data_dir)        # raises database.DatabaseError with a clear message
    c.JupyterHub.db_url = db.url

`prepare` finds the database from `hub.db` (`sqlite-pvc`: `<data_dir>/jupyterhub.sqlite`; `postgres`:
`hub.db.url` with the password from env `TEAMHUB_DB_PASSWORD`), applies a restore that an operator
scheduled (`teamhub db restore`), refuses a corrupted or unreadable database, and when the installed
JupyterHub needs a newer schema it first takes a backup, then upgrades with JupyterHub's own alembic
migrations. A database newer than the installed JupyterHub (a rollback after a migration) is refused with
the matching backup named. Every start, migration and restore is written to the table `teamhub_db_log` in
the database itself, so `teamhub db status` can tell which JupyterHub (and which helm revision, from the
file `release-revision` beside the values file, see `paths.release_revision`) last migrated it.

Backups live in `<data_dir>/backups/` (`hub.db.backupDir` overrides): SQLite with the sqlite3 online backup
API, PostgreSQL with `pg_dump --format=custom`. Each is named after the JupyterHub version that wrote the
database and its alembic revision: `jupyterhub-5.4.3.rev-4621fec11365.20261122T101500Z.sqlite` (`.pgdump`).
Rotation keeps the newest `hub.db.keepBackups` (default 5) and, beyond that, the newest backup of every
schema revision, and never deletes the last one. For PostgreSQL, a migration without a successful dump is
refused (set env `TEAMHUB_DB_BACKUP_DONE=<alembic revision>` after taking your own backup to proceed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from .. import paths
from ..values.schema import with_defaults

DB_FILE = "jupyterhub.sqlite"
RESTORE_REQUEST = "restore-request.json"
LOG_TABLE = "teamhub_db_log"
BACKUP_RE = re.compile(r"^jupyterhub-(?P<version>[^.][^/]*?)\.rev-(?P<rev>[0-9a-f]+|none)\.(?P<at>\d{8}T\d{6}Z)(?:-\d+)?\.(?P<ext>sqlite|pgdump)$")


class DatabaseError(Exception):
    """The database cannot be used as it is; the message says why and what to do."""


# --- settings ------------------------------------------------------------------------------------------
@dataclass
class Settings:
    type: str  # sqlite-pvc | postgres
    url: str  # SQLAlchemy URL, with the password
    display_url: str  # the same without the password
    data_dir: Path
    backup_dir: Path
    keep: int
    path: Path | None = None  # the SQLite file

    @property
    def is_sqlite(self) -> bool:
        return self.type == "sqlite-pvc"


def settings(values: dict | None, data_dir: str | Path | None = None, env=None) -> Settings:
    """`values` as the loader returns them; partial values (scripts, tests) get the schema's defaults here."""
    env = os.environ if env is None else env
    db = with_defaults(values or {})["hub"]["db"]
    data_dir = Path(data_dir or paths.data_dir(env))
    backup_dir = Path(db["backupDir"] or data_dir / "backups")  # "": backups/ on the data volume
    keep = int(db["keepBackups"])
    if keep < 1:
        raise DatabaseError("hub.db.keepBackups must be at least 1")
    kind = db["type"]
    if kind == "sqlite-pvc":
        path = data_dir / DB_FILE
        url = f"sqlite:///{path}"
        return Settings(kind, url, url, data_dir, backup_dir, keep, path)
    if kind != "postgres":
        raise DatabaseError(f"hub.db.type must be sqlite-pvc or postgres, not {kind!r}")
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
    return Settings(kind, url, urlunsplit((scheme, shown, parts.path, parts.query, "")), data_dir, backup_dir, keep)


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


# --- JupyterHub's schema ---------------------------------------------------------------------------------
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


def _engine(s: Settings):
    from sqlalchemy import create_engine

    return create_engine(s.url, connect_args={"connect_timeout": 10} if not s.is_sqlite else {})


def _check_sqlite_file(s: Settings) -> None:
    """Clear errors for a database file that is unreadable or corrupted (never a traceback in a crash loop)."""
    path = s.path
    if not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseError(f"the hub database {path} is not readable and writable by uid {os.getuid()}; "
                            "fix the volume's ownership (the hub runs as uid 1000)")
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise DatabaseError(f"the hub database {path} cannot be read ({exc.strerror or exc}); the hub will not start on it") from exc
    if path.stat().st_size and header != b"SQLite format 3\x00":
        raise DatabaseError(_corrupt_message(s, "the file is not an SQLite database"))
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(_corrupt_message(s, str(exc))) from exc
    if result != [("ok",)]:
        raise DatabaseError(_corrupt_message(s, "; ".join(r[0] for r in result[:3])))


def _corrupt_message(s: Settings, why: str) -> str:
    backups = list_backups(s)
    hint = (f" The newest backup is {backups[-1].path}; restore it with `teamhub db restore {backups[-1].path.name} --now`"
            " (the damaged file is kept beside it) and restart the hub."
            if backups else " No backup exists in " + str(s.backup_dir) + ".")
    return f"the hub database {s.path} is corrupted or unreadable ({why}). The hub will not start on it.{hint}"


def db_revision(s: Settings) -> str | None:
    """The alembic revision stored in the database; None for an empty or new database."""
    from sqlalchemy import inspect, text

    if s.is_sqlite:
        if not s.path.exists() or s.path.stat().st_size == 0:
            return None
        _check_sqlite_file(s)
    try:
        engine = _engine(s)
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
        if s.is_sqlite:
            raise DatabaseError(_corrupt_message(s, str(exc).splitlines()[0])) from exc
        raise DatabaseError(f"cannot read the hub database at {s.display_url}: {str(exc).splitlines()[0]}") from exc


# --- the log table -----------------------------------------------------------------------------------------
def _log(s: Settings, event: str, revision: str | None, backup: str = "", note: str = "") -> None:
    from sqlalchemy import text

    engine = _engine(s)
    try:
        with engine.begin() as con:
            ident = "INTEGER PRIMARY KEY AUTOINCREMENT" if s.is_sqlite else "SERIAL PRIMARY KEY"
            con.execute(text(f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (id {ident}, at VARCHAR(32), event VARCHAR(16), "
                             "jupyterhub_version VARCHAR(32), alembic_revision VARCHAR(32), release_revision VARCHAR(16), "
                             "backup VARCHAR(255), note VARCHAR(255))"))
            con.execute(text(f"INSERT INTO {LOG_TABLE} (at, event, jupyterhub_version, alembic_revision, release_revision, backup, note) "
                             "VALUES (:at, :event, :v, :rev, :rr, :b, :n)"),
                        {"at": _now(), "event": event, "v": jupyterhub_version(), "rev": revision or "",
                         "rr": paths.release_revision(), "b": backup, "n": note[:255]})
    finally:
        engine.dispose()


def read_log(s: Settings) -> list[dict]:
    from sqlalchemy import inspect, text

    if s.is_sqlite and not (s.path and s.path.exists()):
        return []
    engine = _engine(s)
    try:
        with engine.connect() as con:
            if LOG_TABLE not in inspect(con).get_table_names():
                return []
            rows = con.execute(text(f"SELECT at, event, jupyterhub_version, alembic_revision, release_revision, backup, note "
                                    f"FROM {LOG_TABLE} ORDER BY id")).all()
    finally:
        engine.dispose()
    keys = ("at", "event", "jupyterhub_version", "alembic_revision", "release_revision", "backup", "note")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _writer_version(s: Settings, revision: str | None) -> str:
    """The JupyterHub version that last wrote the database (from the log), else a name from its revision."""
    for entry in reversed(read_log(s)):
        if entry["alembic_revision"] == (revision or ""):
            return entry["jupyterhub_version"]
    return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


# --- backups ------------------------------------------------------------------------------------------------
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


def list_backups(s: Settings) -> list[Backup]:
    """Backups, oldest first."""
    out = []
    if s.backup_dir.is_dir():
        for f in s.backup_dir.iterdir():
            m = BACKUP_RE.match(f.name)
            if m and f.is_file():
                out.append(Backup(f, m["version"], m["rev"], m["at"]))
    return sorted(out, key=lambda b: (b.at, b.path.name))


def backup(s: Settings, revision: str | None = None, version: str | None = None) -> Backup:
    """Take a backup now and rotate old ones. Raises DatabaseError when it cannot be taken."""
    if revision is None:
        revision = db_revision(s)
    version = version or _writer_version(s, revision)
    s.backup_dir.mkdir(parents=True, exist_ok=True)
    ext = "sqlite" if s.is_sqlite else "pgdump"
    at = _now()
    target = s.backup_dir / f"jupyterhub-{version}.rev-{revision or 'none'}.{at}.{ext}"
    n = 1
    while target.exists():
        target = s.backup_dir / f"jupyterhub-{version}.rev-{revision or 'none'}.{at}-{n}.{ext}"
        n += 1
    partial = target.with_name(target.name + ".partial")
    try:
        if s.is_sqlite:
            src = sqlite3.connect(f"file:{s.path}?mode=ro", uri=True)
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            con = sqlite3.connect(partial)
            try:
                ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                con.close()
            if not ok:
                raise DatabaseError(f"the backup {partial} failed its integrity check")
        else:
            _pg_dump(s, partial)
        partial.rename(target)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"cannot back up the hub database to {target}: {exc}") from exc
    except DatabaseError:
        partial.unlink(missing_ok=True)
        raise
    rotate(s)
    m = BACKUP_RE.match(target.name)
    return Backup(target, m["version"], m["rev"], m["at"])


def rotate(s: Settings) -> list[Path]:
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


def _pg_env(s: Settings) -> tuple[list[str], dict]:
    from sqlalchemy.engine import make_url

    u = make_url(s.url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    args = ["--host", u.host or "localhost", "--port", str(u.port or 5432), "--username", u.username or "postgres"]
    return args + ["--dbname", u.database or "postgres"], env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    raise DatabaseError(f"{name} is not installed: cannot back up or restore the PostgreSQL database")


def _pg_dump(s: Settings, out: Path) -> None:
    args, env = _pg_env(s)
    r = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(out), *args],
                       env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise DatabaseError(f"pg_dump failed: {r.stderr.strip()}")


def _pg_restore(s: Settings, dump: Path) -> None:
    args, env = _pg_env(s)
    r = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(dump)],
                       env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise DatabaseError(f"pg_restore of {dump} failed: {r.stderr.strip()}")


def find_backup(s: Settings, name: str) -> Backup:
    for b in list_backups(s):
        if b.path.name == name or str(b.path) == name:
            return b
    raise DatabaseError(f"no backup named {name} in {s.backup_dir}")


def matching_backup(s: Settings, revision: str) -> Backup | None:
    """The newest backup at a given schema revision."""
    found = [b for b in list_backups(s) if b.alembic_revision == revision]
    return found[-1] if found else None


def restore(s: Settings, name: str) -> Path | None:
    """Put a backup in place now (the hub must be stopped). The current database is kept beside it:
    SQLite renamed to `jupyterhub.sqlite.replaced-<time>`, PostgreSQL dumped to the backups first.
    Returns where the replaced database was kept."""
    b = find_backup(s, name)
    kept: Path | None = None
    if s.is_sqlite:
        if s.path.exists():
            kept = s.path.with_name(f"{s.path.name}.replaced-{_now()}")
            s.path.rename(kept)
        shutil.copyfile(b.path, s.path.with_name(s.path.name + ".restoring"))
        s.path.with_name(s.path.name + ".restoring").rename(s.path)
    else:
        try:
            kept = backup(s).path
        except DatabaseError as exc:
            raise DatabaseError(f"refusing to restore: the current database could not be kept first ({exc})") from exc
        _pg_restore(s, b.path)
    _log(s, "restore", b.alembic_revision, backup=b.path.name, note=f"replaced database kept as {kept}" if kept else "")
    return kept


def request_restore(s: Settings, name: str) -> Path:
    """Schedule a restore for the next hub start (used before a rollback: the new hub is still running)."""
    b = find_backup(s, name)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    f = s.data_dir / RESTORE_REQUEST
    f.write_text(json.dumps({"backup": b.path.name, "alembic_revision": b.alembic_revision, "requested": _now()}))
    return f


# --- what the hub calls -----------------------------------------------------------------------------------------
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
    s = settings(values, data_dir, env)
    if s.is_sqlite:
        s.data_dir.mkdir(parents=True, exist_ok=True)
    head = head_revision()
    restored = None
    req = s.data_dir / RESTORE_REQUEST
    if req.exists():
        wanted = json.loads(req.read_text())
        if wanted.get("alembic_revision") == head:
            say(f"restoring {wanted['backup']} as requested before the rollback")
            kept = restore(s, wanted["backup"])
            restored = wanted["backup"]
            req.rename(req.with_name(req.name + f".done-{_now()}"))
            if kept:
                say(f"the replaced database is kept as {kept}")
        else:
            say(f"a restore of {wanted.get('backup')} is requested for schema {wanted.get('alembic_revision')}; "
                f"this JupyterHub ({jupyterhub_version()}) uses {head}: leaving it for the matching hub")
    rev = db_revision(s)
    result = Prepared(s.url, s.display_url, s.type, rev, head, restored=restored)
    if rev is None:
        say(f"new database at {s.display_url}: JupyterHub {jupyterhub_version()} creates it at schema {head}")
        _log(s, "create", head)  # JupyterHub stamps a database without its own tables at its head
        return result
    if rev == head:
        _log(s, "start", rev)
        return result
    if rev != "none" and not known_revision(rev):
        match = matching_backup(s, head)
        writer = _writer_version(s, rev)
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
    if s.is_sqlite:
        taken = backup(s, rev)
    else:
        done = env.get("TEAMHUB_DB_BACKUP_DONE", "")
        try:
            taken = backup(s, rev)
        except DatabaseError as exc:
            if done != rev:
                raise DatabaseError(f"the hub database needs a schema upgrade ({rev} -> {head}) and no backup could be taken "
                                    f"({exc}). Refusing to migrate without a backup: fix the dump, or take your own backup and "
                                    f"set env TEAMHUB_DB_BACKUP_DONE={rev} on the hub.") from exc
            taken = None
            say(f"no dump taken ({exc}); proceeding because TEAMHUB_DB_BACKUP_DONE={rev}")
    if taken:
        say(f"backed up the database (schema {rev}) to {taken.path}")
    _upgrade(s)
    after = db_revision(s)
    if after != head:
        raise DatabaseError(f"the schema upgrade of {s.display_url} ended at {after}, not {head}; the backup is {taken and taken.path}")
    _log(s, "migrate", head, backup=taken.path.name if taken else "", note=f"from {rev}")
    say(f"upgraded the database schema {rev} -> {head} for JupyterHub {jupyterhub_version()}")
    result.migrated = True
    result.backup = str(taken.path) if taken else None
    return result


def _upgrade(s: Settings) -> None:
    import alembic.command
    import alembic.config
    from jupyterhub import dbutil

    with dbutil._temp_alembic_ini(s.url) as ini:
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


# --- status for the scripts -----------------------------------------------------------------------------------
def status(s: Settings) -> dict:
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
        return (f"database: WILL BE MIGRATED from schema {rev} (JupyterHub {status_.get('jupyterhub_version')}) to {head} "
                f"(JupyterHub {version}); the hub backs it up first to {where}/jupyterhub-{status_.get('jupyterhub_version')}"
                f".rev-{rev}.<time>.{'sqlite' if status_.get('type') == 'sqlite-pvc' else 'pgdump'}")
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


# --- CLI ------------------------------------------------------------------------------------------------------------
def _cli_settings(args) -> Settings:
    return settings(values_or_empty(args), args.data_dir)


def cmd_db(args) -> int:
    try:
        if args.db_command == "plan":
            st = json.loads(Path(args.status_json).read_text() or "{}") if args.status_json else {}
            print(upgrade_plan(st))
            return 0
        if args.db_command == "rollback-plan":
            st = json.loads(Path(args.status_json).read_text() or "{}")
            plan = rollback_plan(st, args.target, args.target_version)
            if args.backup_only:
                print(plan.get("backup", ""))
            else:
                print(json.dumps(plan) if args.json else plan["message"])
            return 0
        s = _cli_settings(args)
        if args.db_command == "status":
            st = status(s)
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
            print(backup(s).path)
            return 0
        if args.db_command == "upgrade":
            r = prepare(values_or_empty(args), args.data_dir)
            print(f"schema {r.revision}" + (f" (migrated, backup {r.backup})" if r.migrated else ""))
            return 0
        if args.db_command == "restore":
            if args.cancel:
                req = s.data_dir / RESTORE_REQUEST
                if req.exists():
                    req.rename(req.with_name(req.name + f".cancelled-{_now()}"))
                print("no restore is scheduled")
                return 0
            if not args.backup:
                print("teamhub: name a backup (see `teamhub db status`) or give --cancel", file=sys.stderr)
                return 2
            if args.now:
                kept = restore(s, args.backup)
                print(f"restored {args.backup}" + (f"; the replaced database is kept as {kept}" if kept else ""))
            else:
                f = request_restore(s, args.backup)
                print(f"{args.backup} will be restored by the next hub that starts with its schema (request: {f})")
            return 0
    except DatabaseError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 1
    return 2


def values_or_empty(args) -> dict:
    """The values of `--values` or TEAMHUB_VALUES for a database command (`teamhub db`, `teamhub usage`); none: {}."""
    return load_values(args.values) if (args.values or os.environ.get("TEAMHUB_VALUES")) else {}


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
