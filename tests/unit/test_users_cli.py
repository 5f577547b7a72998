"""`teamhub users`: edits keep comments and order, only hashes reach the disk, CSV import."""

from __future__ import annotations

import csv
import difflib
import stat

import yaml
from support import CONFIG, demo_values_text, run_teamhub
from teamhub.auth.passwords import verify_password


def _values(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(demo_values_text())  # the demo's accounts to change
    return path


def test_add_keeps_comments_and_order_and_stores_only_a_hash(tmp_path):
    path = _values(tmp_path)
    before = path.read_text()
    r = run_teamhub("users", "add", path, "dan", "--team", "cv-course", "--rounds", "4", input="dans-secret-pass\n")
    assert r.returncode == 0, r.stderr
    after = path.read_text()
    assert "dans-secret-pass" not in after and "dans-secret-pass" not in r.stdout + r.stderr
    # every original line is still there, in order, with the new account added
    diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:1] in "+-"]
    assert [d[:1] for d in diff] == ["+", "+", "+"] and diff[0] == "+       dan:"
    dan = yaml.safe_load(after)["auth"]["local"]["users"]["dan"]
    assert dan["teams"] == ["cv-course"] and verify_password("dans-secret-pass", dan["passwordHash"])
    assert run_teamhub("validate", "--demo", path).returncode == 0


def test_passwd_set_teams_remove(tmp_path):
    path = _values(tmp_path)
    assert run_teamhub("users", "passwd", path, "alice", "--rounds", "4", input="brand-new-pass\n").returncode == 0
    assert verify_password("brand-new-pass", yaml.safe_load(path.read_text())["auth"]["local"]["users"]["alice"]["passwordHash"])
    assert run_teamhub("users", "set-teams", path, "alice", "nlp-course", "cv-course").returncode == 0
    assert yaml.safe_load(path.read_text())["auth"]["local"]["users"]["alice"]["teams"] == ["nlp-course", "cv-course"]
    r = run_teamhub("users", "set-teams", path, "alice", "no-such-team")
    assert r.returncode == 2 and "unknown team 'no-such-team'" in r.stderr
    assert run_teamhub("users", "remove", path, "local:carol").returncode == 0
    assert "carol" not in yaml.safe_load(path.read_text())["auth"]["local"]["users"]
    r = run_teamhub("users", "passwd", path, "alice", input="short\n")
    assert r.returncode == 2 and "at least 8" in r.stderr


def test_csv_import_generates_strong_passwords_into_a_private_file(tmp_path):
    path = _values(tmp_path)
    roster = tmp_path / "students.csv"
    roster.write_text("username,teams\nStu1,cv-course\nstu2,cv-course;nlp-course\nalice,\n")
    out = tmp_path / "passwords.csv"
    r = run_teamhub("users", "import", path, roster, "--rounds", "4", "--passwords-out", out)
    assert r.returncode == 0, r.stderr
    assert "skipped 1 existing" in r.stderr and r.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.DictReader(out.open()))
    assert [row["username"] for row in rows] == ["local:stu1", "local:stu2"]
    users = yaml.safe_load(path.read_text())["auth"]["local"]["users"]
    for row in rows:
        name = row["username"][6:]
        assert len(row["password"]) >= 16 and row["password"] not in path.read_text()
        assert verify_password(row["password"], users[name]["passwordHash"])
    assert users["stu2"]["teams"] == ["cv-course", "nlp-course"]
    # the same import again refuses to overwrite the password file
    again = run_teamhub("users", "import", path, roster, "--rounds", "4", "--passwords-out", out)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_secret_manifest_is_created_private_and_readable_by_the_hub(tmp_path):
    from teamhub.catalog.loader import load

    manifest = tmp_path / "accounts-secret.yaml"
    r = run_teamhub("users", "add", manifest, "zed", "--create-secret", "lab-accounts", "--rounds", "4", "--generate")
    assert r.returncode == 0, r.stderr
    password = r.stdout.split("\t")[1].strip()
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600 and password not in manifest.read_text()
    doc = yaml.safe_load(manifest.read_text())
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == "lab-accounts"
    mounted = tmp_path / "users.yaml"
    mounted.write_text(doc["stringData"]["users.yaml"])
    secret = tmp_path / "secret.yaml"
    secret.write_text("auth:\n  local:\n    enabled: true\n    existingSecret: {name: lab-accounts, key: users.yaml}\n")
    checked = load([CONFIG / "values.yaml", secret], accounts_file=mounted)  # as the hub reads it
    assert checked.ok, checked.problems
    assert verify_password(password, checked.values["auth"]["local"]["users"]["zed"]["passwordHash"])
    assert run_teamhub("users", "list", manifest).stdout.startswith("local:zed")
