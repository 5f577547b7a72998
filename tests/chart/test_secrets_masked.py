"""Secrets are never printed back (issue 23 finding 8). A marker secret goes into every field the schema marks
`x-secret: true`, in the forms an operator gets wrong (a plaintext password where the hash belongs, in values and
in the `auth.local.existingSecret` file, a password inside `hub.db.url`, a client secret pasted into an
existingSecret field) and in valid forms; no marker may appear in anything `teamhub validate`, `teamhub
check-config` (the pre-upgrade Job), the hub's start log or the chart's NOTES print, while the place (file,
line, YAML path) still is."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading

import pytest
import yaml
from support import run_teamhub, tree_env, wait_for
from teamhub.cli.demo import free_port, hub_command, hub_environment
from teamhub.values.schema import inlined_schema
from test_chart import CHART, helm


class Markers:
    """One distinct marker per field, so a leak names its field."""

    def __init__(self):
        self.by_field: dict[str, str] = {}

    def __call__(self, field: str) -> str:
        self.by_field[field] = "zq" + secrets.token_hex(8)  # lowercase and digits: fits names, URLs and hashes
        return self.by_field[field]

    def leaks(self, text: str) -> list[str]:
        return [field for field, marker in self.by_field.items() if marker in text]


def _bcrypt_like(marker: str) -> str:
    return "$2b$12$" + (marker + "a" * 53)[:53]


def secret_fields(node=None, path=()) -> set[str]:
    """Every `x-secret` field of the schema, "*" for any key of a mapping."""
    node = inlined_schema() if node is None else node
    if not isinstance(node, dict):
        return set()
    if node.get("x-secret"):
        return {".".join(path)}
    out = set()
    for key, sub in node.get("properties", {}).items():
        out |= secret_fields(sub, (*path, key))
    if isinstance(node.get("additionalProperties"), dict):
        out |= secret_fields(node["additionalProperties"], (*path, "*"))
    for alt in (*node.get("anyOf", ()), *node.get("allOf", ()), *node.get("oneOf", ())):
        out |= secret_fields(alt, path)
    return out


def wrong(m: Markers) -> tuple[dict, dict]:
    """(values, the existingSecret accounts file): every secret field holding its marker the wrong way."""
    values = {
        "auth": {
            "local": {"enabled": True, "users": {"ada": {"passwordHash": m("auth.local.users.*.passwordHash")}},
                      "existingSecret": {"name": "accounts", "key": m("auth.local.existingSecret")}},
            "github": {"enabled": True, "clientId": "id", "clientSecret": m("auth.github.clientSecret"),
                       "existingSecret": m("auth.github.existingSecret"),  # the secret itself, in the wrong field
                       "callbackUrl": "https://hub.example.org/hub/github/oauth_callback"},
            "oidc": {"clientSecret": m("auth.oidc.clientSecret"), "existingSecret": m("auth.oidc.existingSecret")},
        },
        "hub": {"existingSecret": m("hub.existingSecret").upper(),  # not a Secret name: pasted a token
                "db": {"type": "postgres", "url": f"postgresql://hub:{m('hub.db.url')}@db.example.org:5432/hub",
                       "password": m("hub.db.password"), "existingSecret": m("hub.db.existingSecret")}},
    }
    # a registry password where the schema wants something else: `create` without the registry it needs
    values["imagePullSecret"] = {"create": True, "username": "u", "password": m("imagePullSecret.password"), "email": 7}
    accounts = {"users": {"bob": {"passwordHash": m("existingSecret file: plaintext password")}}}
    m.by_field["hub.existingSecret"] = m.by_field["hub.existingSecret"].upper()
    return values, accounts


def valid(m: Markers) -> tuple[dict, dict]:
    """The same fields holding markers in forms the schema accepts (so helm renders the NOTES)."""
    values = {
        "auth": {
            "local": {"enabled": True, "users": {"ada": {"passwordHash": _bcrypt_like(m("auth.local.users.*.passwordHash"))}},
                      "existingSecret": {"name": m("auth.local.existingSecret.name"), "key": m("auth.local.existingSecret")}},
            "github": {"enabled": True, "clientId": "id", "clientSecret": m("auth.github.clientSecret"),
                       "existingSecret": {"name": "gh", "key": m("auth.github.existingSecret")},
                       "callbackUrl": "https://hub.example.org/hub/github/oauth_callback"},
            "oidc": {"clientSecret": m("auth.oidc.clientSecret"),
                     "existingSecret": {"name": "sso", "key": m("auth.oidc.existingSecret")}},
        },
        "hub": {"existingSecret": m("hub.existingSecret"),
                # a closed port: the hub and the check fail to connect, and say so
                "db": {"type": "postgres", "url": f"postgresql://hub:{m('hub.db.url')}@127.0.0.1:9/hub",
                       "password": m("hub.db.password"),
                       "existingSecret": {"name": "db", "key": m("hub.db.existingSecret")}}},
    }
    values["imagePullSecret"] = {"create": True, "registry": "registry.example.org", "username": "u",
                                 "password": m("imagePullSecret.password")}
    accounts = {"users": {"bob": {"passwordHash": _bcrypt_like(m("existingSecret file: hash"))}}}
    return values, accounts


FORMS = {"wrong": wrong, "valid": valid}


def test_every_secret_field_gets_a_marker():
    """A new x-secret field without a marker here would go untested: the two lists must agree."""
    for form in FORMS.values():
        m = Markers()
        form(m)
        covered = {f for f in m.by_field if not f.startswith("existingSecret file")}
        assert secret_fields() <= {f.removesuffix(".name") for f in covered}, secret_fields() - covered
    assert {"auth.local.users.*.passwordHash", "auth.github.clientSecret", "hub.db.url", "hub.db.password"} <= secret_fields()


@pytest.fixture(params=list(FORMS))
def case(request, tmp_path):
    m = Markers()
    values, accounts = FORMS[request.param](m)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    accounts_file = tmp_path / "local-users.yaml"
    accounts_file.write_text(yaml.safe_dump(accounts), encoding="utf-8")
    return request.param, m, path, accounts_file


def test_validate_names_the_place_not_the_value(case):
    form, m, path, _ = case
    proc = run_teamhub("validate", path)
    out = proc.stdout + proc.stderr
    assert not m.leaks(out), (m.leaks(out), out)
    if form == "wrong":
        assert proc.returncode == 1
        assert "values.yaml:" in out and "auth.local.users.ada.passwordHash" in out and "hub.db.existingSecret" in out, out


def test_check_config_names_the_place_not_the_value(case, tmp_path):
    form, m, path, accounts = case
    env = tree_env(TEAMHUB_LOCAL_USERS_FILE=str(accounts), TEAMHUB_DATA_DIR=str(tmp_path / "data"))
    proc = run_teamhub("check-config", "--values", path, env=env)
    out = proc.stdout + proc.stderr
    assert not m.leaks(out), (m.leaks(out), out)
    assert proc.returncode == (1 if form == "wrong" else 3), out  # invalid values; the database cannot be reached
    if form == "wrong":
        assert "auth.local.users.bob.passwordHash" in out, out  # the accounts file's account, by its path


def test_the_hubs_start_log_names_the_place_not_the_value(case, tmp_path):
    """The real hub (jupyterhub with teamhub's config): with invalid values it exits by itself; with a database
    that refuses connections it says so (and keeps trying). Everything it logged until then is checked."""
    form, m, path, accounts = case
    state = tmp_path / "state"
    state.mkdir()
    env = hub_environment(path, free_port(), state, None, base=tree_env(TEAMHUB_LOCAL_USERS_FILE=str(accounts)))
    proc = subprocess.Popen(hub_command(state), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=state, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    expected = "auth.local.users.ada.passwordHash" if form == "wrong" else "127.0.0.1:9"
    try:
        wait_for(lambda: proc.poll() is not None or expected in "".join(lines), "the hub's verdict on its values", 120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        reader.join(30)
    out = "".join(lines)
    assert expected in out, out
    assert not m.leaks(out), (m.leaks(out), out)


def test_the_charts_notes_never_show_a_secret(tmp_path):
    """NOTES.txt rendered by helm from these values. `helm template` leaves NOTES.txt out and `helm install
    --dry-run` wants a cluster, so a copy of the chart carries the same text as a template of a document."""
    m = Markers()
    values, _ = valid(m)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("tests"))
    text = (chart / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    (chart / "templates" / "notes-as-rendered.yaml").write_text(
        '{{- define "test.notes" }}' + text + '{{- end }}\nnotes: {{ include "test.notes" . | toJson }}\n', encoding="utf-8")
    rendered = helm("helm3", "template", "t", chart, "-n", "lab", "-f", path,
                    "--show-only", "templates/notes-as-rendered.yaml").stdout
    notes = yaml.safe_load(rendered)["notes"]
    assert "Local accounts: ada" in notes, notes  # the NOTES were rendered from these values
    assert not m.leaks(notes), (m.leaks(notes), notes)
