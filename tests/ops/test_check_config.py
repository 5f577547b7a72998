"""`teamhub check-config`, the command the chart's pre-upgrade hook Job runs: the hub's own loader and
configuration code, then the database plan, with real SQLite databases made by this JupyterHub."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from support import CONFIG, run_teamhub, tree_env
from teamhub.db import migrate, schema, settings

VALUES = CONFIG / "values.yaml"


def check(tmp_path, values=VALUES, *args, **env):
    e = tree_env(**{"TEAMHUB_VALUES": str(values), "TEAMHUB_DATA_DIR": str(tmp_path / "data"), "TEAMHUB_MODE": "kubernetes",
                    "POD_NAMESPACE": "teamhub", **env})
    return run_teamhub("check-config", *args, env=e)


def at_head(data):
    """A database as this JupyterHub's hub leaves it: prepared, then JupyterHub's tables at its schema."""
    from jupyterhub import orm

    db = migrate.prepare({}, data, log=lambda m: None)
    orm.new_session_factory(db.url)().close()
    assert schema.db_revision(settings.backend({}, data)) == schema.head_revision()


def test_valid_values_and_no_database_here(tmp_path):
    r = check(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration: the hub would start" in r.stdout
    assert "SQLite at sqlite:///" in r.stdout and "is not mounted here" in r.stdout
    assert not (tmp_path / "data" / "jupyterhub.sqlite").exists(), "the check creates no database"


def test_invalid_values_fail_as_the_hub_would(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALUES.read_text().replace("image: scipy\n", "image: scipyy\n", 1))
    r = check(tmp_path, bad)
    assert r.returncode == 1
    assert "scipyy" in r.stdout + r.stderr and "the hub does not start" in r.stderr
    assert "Traceback" not in r.stderr
    # the hub's own start (jupyterhub_config.py) refuses the same file with the same exit status: one loader
    hub = subprocess.run([sys.executable, "-c", "from traitlets.config import Config\n"
                          "from teamhub.hub.config import load_from_environment\nload_from_environment(Config())"],
                         env=tree_env(TEAMHUB_VALUES=str(bad), TEAMHUB_DATA_DIR=str(tmp_path / "data")), capture_output=True, text=True)
    assert hub.returncode == r.returncode
    assert hub.stdout + hub.stderr == r.stdout + r.stderr


def test_unreadable_values_and_bad_mode(tmp_path):
    assert check(tmp_path, tmp_path / "missing.yaml").returncode == 2
    r = check(tmp_path, VALUES, TEAMHUB_MODE="swarm")
    assert r.returncode == 2 and "TEAMHUB_MODE must be one of kubernetes, local" in r.stderr


def test_database_at_this_schema_passes_with_its_plan(tmp_path):
    at_head(tmp_path / "data")
    r = check(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"schema {schema.head_revision()} already matches JupyterHub" in r.stdout


def test_database_newer_than_this_jupyterhub_fails_the_check(tmp_path):
    """After a migration by a newer JupyterHub, an older hub image would refuse the database at start."""
    data = tmp_path / "data"
    at_head(data)
    with sqlite3.connect(data / "jupyterhub.sqlite") as con:
        con.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")
        con.execute("DELETE FROM alembic_version")
        con.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    r = check(tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "schema ffffffffffff is newer than JupyterHub" in r.stderr
    assert check(tmp_path, VALUES, "--skip-database").returncode == 0


def test_corrupt_database_fails_the_check(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "jupyterhub.sqlite").write_bytes(b"this is not a database" * 100)
    r = check(tmp_path)
    assert r.returncode == 3
    assert "database: the hub would not start:" in r.stderr and "jupyterhub.sqlite" in r.stderr


def test_unreachable_identity_provider_does_not_fail_the_upgrade_like_it_does_not_stop_the_hub(tmp_path):
    """The hub starts without single sign-on and retries discovery (issue 18 item 3); the check agrees and says so."""
    import yaml

    from .hubenv import free_port

    values = yaml.safe_load(VALUES.read_text())
    values["auth"]["oidc"] = {"enabled": True, "issuerUrl": f"http://127.0.0.1:{free_port()}/realms/x", "clientId": "hub",
                              "callbackUrl": "https://hub.example.org/hub/oidc/oauth_callback", "clientSecret": "s"}
    f = tmp_path / "oidc.yaml"
    f.write_text(yaml.safe_dump(values))
    r = check(tmp_path, f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the hub would start" in r.stdout
    assert "auth.oidc.issuerUrl: cannot read http://127.0.0.1:" in r.stdout + r.stderr
    assert "retrying in the background" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
