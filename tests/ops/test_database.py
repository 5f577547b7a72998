"""teamhub.db with real databases: SQLite files and a PostgreSQL server from Debian's packages, a
database written by an older JupyterHub release (its own virtualenv), real hubs started on them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import tree_env
from teamhub.db import backups, migrate, plan, postgres, schema, settings, sqlite
from teamhub.db import log as db_log
from teamhub.db.backend import DatabaseError

from . import pgserver
from .hubenv import cached_venv, free_port, stop_tree, wait_http

OLD_JUPYTERHUB = "5.4.3"
HUB_DB_CONFIG = Path(__file__).with_name("hub_db_config.py")


@pytest.fixture(scope="module")
def old_venv():
    """An older JupyterHub release, as the previous teamhub image shipped it."""
    return cached_venv(f"jupyterhub-{OLD_JUPYTERHUB}", f"jupyterhub=={OLD_JUPYTERHUB}\npsycopg2-binary==2.9.13\n", no_deps=False)


@pytest.fixture(scope="module")
def pg():
    if pgserver.pg_bin() is None:
        pytest.fail("PostgreSQL server binaries are not installed: run `make setup`, which installs them")
    server = pgserver.start()
    yield server
    pgserver.stop(server)


def run_old(venv: Path, code: str, **env) -> str:
    """Python in the old release's environment, with this tree's teamhub (the old image had teamhub too)."""
    e = tree_env(**env)
    r = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def write_old_db(venv: Path, values: dict, data_dir: Path, users=("local:alice",), revision="1", **env) -> str:
    """The old release's hub start: teamhub.db.migrate.prepare, then JupyterHub creates its tables. Returns the schema."""
    return run_old(venv, f"""
        import json
        from teamhub.db import migrate, schema
        from jupyterhub import orm
        db = migrate.prepare(json.loads({json.dumps(json.dumps(values))}), {str(data_dir)!r})
        session = orm.new_session_factory(db.url)()
        for name in {list(users)!r}:
            session.add(orm.User(name=name))
        session.commit()
        print(schema.head_revision())
    """, TEAMHUB_RELEASE_REVISION=revision, **env).strip()


def user_names(url: str) -> set[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return {r[0] for r in con.execute(text("SELECT name FROM users"))}
    finally:
        engine.dispose()


def add_user(url: str, name: str) -> None:
    from jupyterhub import orm

    session = orm.new_session_factory(url)()
    session.add(orm.User(name=name))
    session.commit()
    session.close()
    session.get_bind().dispose()


def start_hub(jupyterhub: Path, data_dir: Path, env_extra: dict, timeout=120):
    port, hub_port, api_port = free_port(), free_port(), free_port()
    if "TEAMHUB_VALUES" not in env_extra:
        (data_dir / "empty-values.yaml").write_text("{}\n")
        env_extra = dict(env_extra, TEAMHUB_VALUES=str(data_dir / "empty-values.yaml"))
    env = tree_env(TEAMHUB_DATA_DIR=str(data_dir), **env_extra)
    env["PATH"] = os.pathsep.join([str(jupyterhub.parent), env["PATH"]])
    log = (data_dir / "hub.log").open("w")
    proc = subprocess.Popen([str(jupyterhub), "-f", str(HUB_DB_CONFIG), "--ip=127.0.0.1", f"--port={port}",
                             f"--JupyterHub.hub_port={hub_port}", f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}"],
                            cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, log


def stop_hub(proc, log) -> None:
    stop_tree(proc)
    log.close()


def hub_health(jupyterhub: Path, data_dir: Path, **env) -> int:
    proc, port, log = start_hub(jupyterhub, data_dir, env)
    try:
        return wait_http(f"http://127.0.0.1:{port}/hub/health", 120, proc)
    except Exception:
        print((data_dir / "hub.log").read_text()[-4000:])
        raise
    finally:
        stop_hub(proc, log)


# --- SQLite ---------------------------------------------------------------------------------------------------
def test_hub_starts_on_new_sqlite(tmp_path):
    jh = Path(sys.executable).with_name("jupyterhub")
    assert hub_health(jh, tmp_path) == 200
    s = settings.backend({}, tmp_path)
    assert schema.db_revision(s) == schema.head_revision()
    assert [e["event"] for e in db_log.read_log(s)][:1] == ["create"]


def test_old_release_db_upgraded_with_backup_then_rollback_restores_it(old_venv, tmp_path):
    old_head = write_old_db(old_venv, {}, tmp_path)
    s = settings.backend({}, tmp_path)
    assert old_head != schema.head_revision(), "the old release must have an older schema for this test"
    assert schema.db_revision(s) == old_head

    # helm_update.sh's view before upgrading, from the running old hub's status
    old_status = json.loads(run_old(old_venv, f"""
        import json
        from teamhub.db import plan, settings
        print(json.dumps(plan.status(settings.backend({{}}, {str(tmp_path)!r}))))"""))
    upgrade = plan.upgrade_plan(old_status)
    assert "WILL BE MIGRATED" in upgrade and f"jupyterhub-{OLD_JUPYTERHUB}.rev-{old_head}" in upgrade and str(tmp_path / "backups") in upgrade

    # the new release's hub starts: backup first, then the migration
    os.environ["TEAMHUB_RELEASE_REVISION"] = "2"
    try:
        result = migrate.prepare({}, tmp_path)
    finally:
        del os.environ["TEAMHUB_RELEASE_REVISION"]
    assert result.migrated and result.revision_before == old_head
    taken = backups.list_backups(s)
    assert len(taken) == 1
    b = taken[0]
    assert b.jupyterhub_version == OLD_JUPYTERHUB and b.alembic_revision == old_head
    assert b.path.parent == tmp_path / "backups"
    assert schema.db_revision(s) == schema.head_revision()
    assert user_names(f"sqlite:///{b.path}") == {"local:alice"}
    assert sqlite3.connect(b.path).execute("SELECT version_num FROM alembic_version").fetchone()[0] == old_head
    add_user(s.url, "local:bob")  # written after the migration: kept in the newer database on rollback

    # a second start migrates nothing and takes no backup
    assert not migrate.prepare({}, tmp_path).migrated
    assert len(backups.list_backups(s)) == 1

    # rollback.sh's view: revision 1 ran the old JupyterHub, which the database no longer fits
    new_status = plan.status(s)
    assert new_status["last_migrated_by"] == schema.jupyterhub_version()
    rollback = plan.rollback_plan(new_status, 1)
    assert rollback["restore"] and rollback["backup"] == b.path.name
    assert not plan.rollback_plan(new_status, 2)["restore"]

    # without a restore, the old release refuses the newer database with a clear message (no crash loop)
    r = subprocess.run([str(old_venv / "bin" / "python"), "-c", f"from teamhub.db import migrate; migrate.prepare({{}}, {str(tmp_path)!r})"],
                       env=tree_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "newer than this JupyterHub" in r.stderr and b.path.name in r.stderr

    # the restore requested before the rollback is applied by the old release's hub at its start
    r = subprocess.run([sys.executable, "-m", "teamhub.cli.ops", "db", "restore", b.path.name, "--data-dir", str(tmp_path)],
                       env=tree_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert schema.db_revision(s) == schema.head_revision(), "a requested restore waits for the matching hub"
    old_jh = old_venv / "bin" / "jupyterhub"
    assert hub_health(old_jh, tmp_path) == 200, "the old release's hub starts on the restored database"
    assert schema.db_revision(s) == old_head
    assert user_names(s.url) == {"local:alice"}
    kept = list(tmp_path.glob("jupyterhub.sqlite.replaced-*"))
    assert len(kept) == 1 and user_names(f"sqlite:///{kept[0]}") == {"local:alice", "local:bob"}, "the newer database is kept"
    assert b.path.exists(), "the backup itself is never consumed"


def test_corrupted_database_gives_a_clear_error(tmp_path):
    s = settings.backend({}, tmp_path)
    migrate.prepare({}, tmp_path)
    add_user(s.url, "local:alice")
    backups.backup(s)
    data = s.path.read_bytes()
    s.path.write_bytes(data[:100] + b"\xff" * 4096 + data[4196:])
    with pytest.raises(DatabaseError, match="corrupted or unreadable") as err:
        migrate.prepare({}, tmp_path)
    assert "teamhub db restore" in str(err.value)
    s.path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DatabaseError, match="not an SQLite database"):
        migrate.prepare({}, tmp_path)


def test_hub_with_corrupted_database_exits_with_message_not_traceback(tmp_path):
    (tmp_path / "jupyterhub.sqlite").write_bytes(b"garbage" * 1000)
    jh = Path(sys.executable).with_name("jupyterhub")
    proc, port, log = start_hub(jh, tmp_path, {})
    try:
        assert proc.wait(120) == 3
    finally:
        stop_hub(proc, log)
    out = (tmp_path / "hub.log").read_text()
    assert "the hub cannot start: the hub database" in out and "corrupted or unreadable" in out
    assert "Traceback" not in out


def test_database_path_that_is_not_a_file(tmp_path):
    (tmp_path / "jupyterhub.sqlite").mkdir()
    with pytest.raises(DatabaseError, match="cannot be read"):
        migrate.prepare({}, tmp_path)


def test_unreadable_database(tmp_path, monkeypatch):
    migrate.prepare({}, tmp_path)
    (tmp_path / "jupyterhub.sqlite").chmod(0)
    if os.getuid() == 0:  # root reads every file: let the permission check see what the hub's user would
        real_access, db = os.access, str(tmp_path / "jupyterhub.sqlite")
        monkeypatch.setattr(sqlite.os, "access", lambda path, mode: str(path) != db and real_access(path, mode))
    with pytest.raises(DatabaseError, match="not readable and writable"):
        migrate.prepare({}, tmp_path)


def test_rotation_never_deletes_the_only_copy(tmp_path):
    s = settings.backend({"hub": {"db": {"keepBackups": 2}}}, tmp_path)
    s.backup_dir.mkdir(parents=True)
    names = [f"jupyterhub-5.4.3.rev-aaaa.20261101T00000{i}Z.sqlite" for i in range(4)] + \
            [f"jupyterhub-6.1.1.rev-bbbb.20261102T00000{i}Z.sqlite" for i in range(3)]
    for n in names:
        (s.backup_dir / n).write_text("x")
    deleted = {p.name for p in backups.rotate(s)}
    left = sorted(p.name for p in s.backup_dir.iterdir())
    assert left == [names[3], names[5], names[6]], "newest N, plus the newest of every schema revision"
    assert deleted == set(names) - set(left)
    one = settings.backend({"hub": {"db": {"keepBackups": 1}}}, tmp_path / "one")
    one.backup_dir.mkdir(parents=True)
    (one.backup_dir / names[0]).write_text("x")
    assert backups.rotate(one) == [] and (one.backup_dir / names[0]).exists()
    with pytest.raises(DatabaseError):
        settings.backend({"hub": {"db": {"keepBackups": 0}}}, tmp_path)


def test_backup_is_consistent_while_the_database_is_in_use(tmp_path):
    s = settings.backend({}, tmp_path)
    migrate.prepare({}, tmp_path)
    add_user(s.url, "local:alice")
    con = sqlite3.connect(s.path)
    con.execute("BEGIN")
    con.execute("CREATE TABLE scratch (x)")
    con.execute("INSERT INTO scratch VALUES (1)")
    b = backups.backup(s)  # the online backup API copies the committed state
    con.rollback()
    con.close()
    assert user_names(f"sqlite:///{b.path}") == {"local:alice"}
    tables = {r[0] for r in sqlite3.connect(b.path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "scratch" not in tables and "users" in tables


# --- PostgreSQL -----------------------------------------------------------------------------------------------------
def pg_values(pg, db: str) -> dict:
    return {"hub": {"db": {"type": "postgres", "url": pg.url(db)}}}


def test_hub_starts_on_postgres(pg, tmp_path):
    pg.createdb("hubnew")
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps(pg_values(pg, "hubnew")))
    jh = Path(sys.executable).with_name("jupyterhub")
    assert hub_health(jh, tmp_path, TEAMHUB_VALUES=str(values), TEAMHUB_DB_PASSWORD=pg.password) == 200
    assert pg.psql("hubnew", "SELECT version_num FROM alembic_version") == schema.head_revision()
    assert not (tmp_path / "jupyterhub.sqlite").exists()


def test_postgres_password_never_shown(pg, tmp_path):
    s = settings.backend(pg_values(pg, "x"), tmp_path, env={"TEAMHUB_DB_PASSWORD": "p@ss:word"})
    assert "p%40ss%3Aword" in s.url and "p@ss" not in s.display_url and "***" in s.display_url


def test_postgres_old_release_upgraded_with_dump_and_restored(pg, old_venv, tmp_path):
    pg.createdb("hubold")
    values = pg_values(pg, "hubold")
    old_head = write_old_db(old_venv, values, tmp_path, TEAMHUB_DB_PASSWORD=pg.password)
    env = {"TEAMHUB_DB_PASSWORD": pg.password, "TEAMHUB_RELEASE_REVISION": "2"}
    result = migrate.prepare(values, tmp_path, env=env)
    assert result.migrated
    s = settings.backend(values, tmp_path, env=env)
    [b] = backups.list_backups(s)
    assert b.path.suffix == ".pgdump" and b.alembic_revision == old_head and b.jupyterhub_version == OLD_JUPYTERHUB
    assert pg.psql("hubold", "SELECT version_num FROM alembic_version") == schema.head_revision()
    add_user(s.url, "local:bob")
    # rollback: restore the matching dump; the newer database is dumped beside it first
    os.environ["TEAMHUB_DB_PASSWORD"] = pg.password
    try:
        kept = backups.restore(s, b.path.name)
    finally:
        del os.environ["TEAMHUB_DB_PASSWORD"]
    assert pg.psql("hubold", "SELECT version_num FROM alembic_version") == old_head
    assert pg.psql("hubold", "SELECT string_agg(name, ',') FROM users") == "local:alice"
    assert kept and kept.exists() and backups.BACKUP_RE.match(kept.name)["rev"] == schema.head_revision()
    values_file = tmp_path / "values.yaml"
    values_file.write_text(json.dumps(values))
    assert hub_health(old_venv / "bin" / "jupyterhub", tmp_path, TEAMHUB_VALUES=str(values_file), TEAMHUB_DB_PASSWORD=pg.password) == 200


def test_postgres_refuses_to_migrate_without_backup(pg, old_venv, tmp_path, monkeypatch):
    pg.createdb("hubnodump")
    values = pg_values(pg, "hubnodump")
    old_head = write_old_db(old_venv, values, tmp_path, TEAMHUB_DB_PASSWORD=pg.password)
    monkeypatch.setattr(postgres, "_tool", lambda name: "/nonexistent/pg_dump")
    env = {"TEAMHUB_DB_PASSWORD": pg.password}
    with pytest.raises(DatabaseError, match="Refusing to migrate without a backup"):
        migrate.prepare(values, tmp_path, env=env)
    assert pg.psql("hubnodump", "SELECT version_num FROM alembic_version") == old_head, "nothing was migrated"
    result = migrate.prepare(values, tmp_path, env=dict(env, TEAMHUB_DB_BACKUP_DONE=old_head))
    assert result.migrated and result.backup is None


def test_postgres_backup_and_restore_get_the_whole_url(tmp_path):
    """`hub.db.url`'s query (sslmode, sslrootcert, sslcert, sslkey) reaches pg_dump and pg_restore as it reaches
    the hub (issue 24): this server admits only TLS clients presenting a certificate, so a dump connects only with
    the URL's parameters (pg_dump was given host, port, user and database alone before)."""
    from cluster.pki import Pki

    pki = Pki(tmp_path / "pki")
    serving = pki.server("postgres", ("IP:127.0.0.1",))
    client = pki.client("pg-client", "teamhub")
    server = pgserver.start(tls=(serving.cert, serving.key, pki.ca.cert))
    try:
        query = f"sslmode=verify-full&sslrootcert={pki.ca.cert}&sslcert={client.cert}&sslkey={client.key}"
        values = {"hub": {"db": {"type": "postgres", "url": f"{server.url('postgres')}?{query}"}}}
        s = settings.backend(values, tmp_path, env={})
        from sqlalchemy import text

        engine = s.engine()
        with engine.begin() as con:
            con.execute(text("CREATE TABLE kept (note TEXT)"))
            con.execute(text("INSERT INTO kept VALUES ('before the backup')"))
        b = backups.backup(s)
        with engine.begin() as con:
            con.execute(text("UPDATE kept SET note = 'after the backup'"))
        engine.dispose()
        s.put_back(b.path)
        engine = s.engine()
        with engine.connect() as con:
            assert con.execute(text("SELECT note FROM kept")).scalar_one() == "before the backup"
        engine.dispose()
        # The same dump without the client certificate is refused: the parameters are what let it in.
        bare = settings.backend({"hub": {"db": {"type": "postgres", "url": f"{server.url('postgres')}?sslmode=require"}}}, tmp_path, env={})
        with pytest.raises(DatabaseError, match="pg_dump failed"):
            bare.copy_to(tmp_path / "refused.pgdump")
    finally:
        pgserver.stop(server)
