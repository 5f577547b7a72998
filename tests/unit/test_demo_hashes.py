"""No known passwords in anything an operator installs (issue 25): the demo's accounts live only in the demo
overlay, and their published hashes are refused by `teamhub validate`, the hub at start and the chart's
pre-upgrade check (`teamhub check-config`) everywhere but demo mode."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import bcrypt
import pytest
import yaml
from support import CONFIG, DEMO_OVERLAY, DEMO_VALUES, ROOT, demo_passwords, run_teamhub, tree_env
from teamhub.hub import config as hub_config
from teamhub.values.demohashes import DEMO_HASHES

SENTENCE = "this is the published hash of the demo account '{name}' (its password is in README)"


def line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_list_holds_every_hash_of_the_overlay_and_each_opens_its_published_password():
    users = yaml.safe_load(DEMO_OVERLAY.read_text())["auth"]["local"]["users"]
    passwords = demo_passwords()
    assert set(users) == set(passwords) == set(DEMO_HASHES)
    for name, user in users.items():
        assert user["passwordHash"] == DEMO_HASHES[name]
        assert bcrypt.checkpw(passwords[name].encode(), user["passwordHash"].encode()), name


def test_nothing_an_operator_installs_carries_a_demo_hash():
    shipped = [p for p in [*CONFIG.rglob("*.yaml"), *(ROOT / "chart").rglob("*")] if p.is_file() and "demo" not in p.relative_to(ROOT).parts]
    assert len(shipped) > 10
    carrying = [str(p) for p in shipped if any(h in p.read_text(errors="replace") for h in DEMO_HASHES.values())]
    assert carrying == []
    assert yaml.safe_load((CONFIG / "values.yaml").read_text())["auth"]["local"]["users"] == {}


def test_validate_refuses_the_demo_hashes_with_file_line_and_path():
    r = run_teamhub("validate", *DEMO_VALUES)
    assert r.returncode == 1 and "invalid: 4 error(s)" in r.stderr
    for name in DEMO_HASHES:
        line = line_of(DEMO_OVERLAY, DEMO_HASHES[name])
        assert f"{DEMO_OVERLAY}:{line}: auth.local.users.{name}.passwordHash: {SENTENCE.format(name=name)}" in r.stdout
    assert "teamhub hash-password" in r.stdout
    demo = run_teamhub("validate", "--demo", *DEMO_VALUES)
    assert demo.returncode == 0 and "valid (" in demo.stdout, demo.stdout + demo.stderr


def test_a_demo_hash_copied_into_an_operators_own_file_is_refused_there(tmp_path):
    own = tmp_path / "prod.yaml"
    own.write_text(f"auth:\n  local:\n    users:\n      zed:\n        passwordHash: \"{DEMO_HASHES['bob']}\"\n        teams: []\n")
    r = run_teamhub("validate", CONFIG / "values.yaml", own)
    assert r.returncode == 1
    assert f"{own}:5: auth.local.users.zed.passwordHash: {SENTENCE.format(name='bob')}" in r.stdout


def env_for(mode: str, demo: bool, tmp_path) -> dict:
    env = {"TEAMHUB_VALUES": os.pathsep.join(map(str, DEMO_VALUES)), "TEAMHUB_MODE": mode, "TEAMHUB_DATA_DIR": str(tmp_path)}
    return {**env, "TEAMHUB_DEMO": "1"} if demo else env


@pytest.mark.parametrize("mode, demo, starts", [("local", True, True), ("local", False, False), ("kubernetes", True, False),
                                                ("kubernetes", False, False)])
def test_the_hub_accepts_them_only_in_demo_mode_on_a_laptop(mode, demo, starts, tmp_path):
    """TEAMHUB_DEMO=1 is what `teamhub demo` sets; a chart's hub (kubernetes mode) refuses whatever its env says."""
    out = io.StringIO()
    if starts:
        checked, _ = hub_config.load_checked(env_for(mode, demo, tmp_path), out)
        assert checked.ok and set(checked.values["auth"]["local"]["users"]) == set(DEMO_HASHES) and out.getvalue() == ""
        return
    with pytest.raises(hub_config.ConfigError) as err:
        hub_config.load_checked(env_for(mode, demo, tmp_path), out)
    assert err.value.code == 1 and "invalid: 4 error(s); the hub does not start" in str(err.value)
    assert f"{DEMO_OVERLAY}:{line_of(DEMO_OVERLAY, DEMO_HASHES['ada'])}: auth.local.users.ada.passwordHash: " in out.getvalue()


def test_a_real_hub_start_stops_with_the_sentence(tmp_path):
    env = tree_env(**env_for("local", False, tmp_path))
    r = subprocess.run([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub-image" / "jupyterhub_config.py")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stderr[-2000:]
    assert SENTENCE.format(name="alice") in r.stderr and "the hub does not start" in r.stderr


def test_the_pre_upgrade_check_refuses_them(tmp_path):
    r = run_teamhub("check-config", "--skip-database", env=tree_env(**env_for("kubernetes", True, tmp_path)))
    assert r.returncode == 1 and SENTENCE.format(name="carol") in r.stderr, r.stdout + r.stderr
