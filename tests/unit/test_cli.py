"""The `teamhub` command as an operator runs it: exit codes, messages, tables."""

from __future__ import annotations

import importlib.util
import re

import bcrypt
import pytest
from support import CONFIG, DEMO_VALUES, demo_values_text, run_teamhub


def test_validate_ok(tmp_path):
    demo = run_teamhub("validate", "--demo", *DEMO_VALUES)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "valid (5 resources, 4 teams, 0 warning(s))" in demo.stdout
    # The operator's starting point alone is valid; it has no accounts yet, which its teams' warnings say.
    result = run_teamhub("validate", CONFIG / "values.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if ": warning: " in line]
    assert len(warnings) == 3 and all("nobody can belong to this team" in w for w in warnings), result.stdout


def test_validate_merges_files_in_order_and_reports_the_later_file(tmp_path):
    extra = tmp_path / "prod.yaml"
    extra.write_text("catalog:\n  teams:\n    cv-course:\n      resources: [course-cv, gpu-larg]\n")
    result = run_teamhub("validate", CONFIG / "values.yaml", extra)
    assert result.returncode == 1
    assert f"{extra}:4: catalog.teams.cv-course.resources[1]: unknown resource 'gpu-larg'" in result.stdout
    assert "invalid: 1 error(s)" in result.stderr


def test_validate_warnings_still_exit_zero(tmp_path):
    extra = tmp_path / "dev.yaml"
    extra.write_text("auth:\n  dummy:\n    enabled: true\n")
    result = run_teamhub("validate", CONFIG / "values.yaml", extra)
    assert result.returncode == 0
    assert f"{extra}:3: warning: auth.dummy.enabled: the dummy login accepts any password" in result.stdout


def test_validate_unreadable_file_and_usage_errors_exit_2(tmp_path):
    missing = run_teamhub("validate", tmp_path / "nope.yaml")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert run_teamhub("validate").returncode == 2
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert run_teamhub("validate", binary).returncode == 2


def test_hash_password_from_stdin_is_bcrypt():
    result = run_teamhub("hash-password", "--rounds", "4", input="correct horse\n")
    assert result.returncode == 0
    hashed = result.stdout.strip()
    assert hashed.startswith("$2b$04$")
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert "correct horse" not in result.stdout + result.stderr
    assert run_teamhub("hash-password", input="\n").returncode == 2


@pytest.mark.parametrize("password", ["x", "1234567"])
def test_hash_password_and_users_refuse_the_same_short_passwords(password, tmp_path):
    """One rule for every password a person chooses (teamhub.auth.passwords.MIN_LENGTH)."""
    hashed = run_teamhub("hash-password", "--rounds", "4", input=f"{password}\n")
    assert hashed.returncode == 2 and "at least 8 characters" in hashed.stderr and "$2b$" not in hashed.stdout
    values = tmp_path / "values.yaml"
    values.write_text(demo_values_text())
    changed = run_teamhub("users", "passwd", values, "alice", "--rounds", "4", input=f"{password}\n")
    assert changed.returncode == 2 and "at least 8 characters" in changed.stderr
    assert values.read_text() == demo_values_text()


def test_the_package_docstring_names_only_modules_that_exist():
    import teamhub

    named = set(re.findall(r"`([\w.]+)`", teamhub.__doc__))
    assert named, teamhub.__doc__
    missing = [m for m in sorted(named) if importlib.util.find_spec(f"teamhub.{m}") is None]
    assert not missing, f"teamhub/__init__.py names modules that do not exist: {missing}"


def test_catalog_for_a_user_and_for_teams():
    result = run_teamhub("catalog", *DEMO_VALUES, "--user", "local:bob")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "teams: everyone, nlp-course"
    assert lines[1].split() == ["RESOURCE", "IMAGE", "CPU", "MEMORY", "GPU", "/", "ACCELERATORS", "MAX", "MIN", "TEAM"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["cpu-small", "cpu-large", "course-nlp"]
    assert "1x nvidia.com/gpu" in rows["course-nlp"] and "180" in rows["course-nlp"]
    teams = run_teamhub("catalog", CONFIG / "values.yaml", "--team", "cv-course")
    assert "AMD Radeon 8060S (1x amd.com/gpu) | AMD Instinct MI300X (1x amd.com/gpu)" in teams.stdout
    assert run_teamhub("catalog", CONFIG / "values.yaml", "--team", "nope").returncode == 2



def test_catalog_for_a_user_lowercases_the_name_like_the_hub():
    """`--user local:Bob` is the person the hub calls local:bob (JupyterHub lowercases every login name)."""
    result = run_teamhub("catalog", *DEMO_VALUES, "--user", "Local:Bob")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "teams: everyone, nlp-course"


def test_schema_is_current():
    result = run_teamhub("schema", "--check")
    assert result.returncode == 0, result.stderr
