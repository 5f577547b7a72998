"""What ships is what was tested: the hub image's /opt/teamhub, built by tests/shipped.py exactly as
hub-image/Dockerfile builds it, holds every file of the package and serves teamhub's own pages."""

from __future__ import annotations

import os
import re
import subprocess

import httpx
import pytest
import yaml
from fakeproviders import FakeGitHub
from hubprocess import ROOT, HubProcess, demo_values
from shipped import installed_files
from teamhub.auth.passwords import hash_password

# The first run after a change to hub-image/ builds the venv (pip installs the whole lock: minutes on a
# busy machine); later runs reuse it.
pytestmark = pytest.mark.timeout(1200)

TITLE, SUBTITLE = "Physics Lab Jupyter", "Course and research notebooks"


def test_every_tracked_file_of_the_package_is_in_the_wheel(shipped_venv):
    tracked = subprocess.run(["git", "ls-files", "hub-image/teamhub"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "git ls-files found nothing under hub-image/teamhub"
    expected = {path.removeprefix("hub-image/teamhub/") for path in tracked}
    missing = expected - installed_files(shipped_venv)
    assert not missing, f"tracked in hub-image/teamhub/ but not in the wheel (hub-image/pyproject.toml package-data): {sorted(missing)}"


@pytest.fixture(scope="module")
def github():
    gh = FakeGitHub().start()  # only for its button on the login page; nobody logs in with it here
    yield gh
    gh.stop()


@pytest.fixture(scope="module")
def shipped_hub(shipped_venv, github, tmp_path_factory):
    state = tmp_path_factory.mktemp("shipped-hub")
    values = demo_values()
    values["auth"]["local"]["users"]["alice"]["passwordHash"] = hash_password("alice-shipped-pass", 4)
    values["branding"] = {"title": TITLE, "subtitle": SUBTITLE, "colors": {"primary": "#0b5394"}}
    values_file = state / "values.yaml"
    hub = HubProcess(values_file, state, venv=shipped_venv)
    values["auth"]["github"] = {"enabled": True, "url": github.url, "clientId": github.client_id,
                                "clientSecret": github.client_secret, "callbackUrl": f"{hub.url}/hub/github/oauth_callback",
                                "allowedOrganizations": ["lab"]}
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    hub.start()
    yield hub
    hub.stop()


def test_the_hub_runs_from_the_shipped_venv_only(shipped_hub, shipped_venv):
    assert "PYTHONPATH" not in shipped_hub.env
    code = "import jupyterhub, teamhub, teamhub.auth; print(teamhub.__file__); print(jupyterhub.__file__)"
    out = subprocess.run([str(shipped_venv / "bin" / "python"), "-c", code], env=shipped_hub.env, cwd=shipped_hub.state,
                         capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(shipped_venv)) for path in out), out


def test_login_page_is_teamhubs_branded_page_with_every_method(shipped_hub):
    page = httpx.get(f"{shipped_hub.url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert f"<h1>{TITLE}</h1>" in page.text and SUBTITLE in page.text
    assert re.search(r'<form[^>]*class="teamhub-card teamhub-local"[^>]*action="/hub/local/login"', page.text), page.text[:3000]
    assert re.search(r'<a[^>]*teamhub-github"[^>]*href="/hub/github/oauth_login"', page.text), page.text[:3000]


def test_log_in_see_the_launch_page_and_launch(shipped_hub):
    client = shipped_hub.login("alice", "alice-shipped-pass")
    launch = client.get("/hub/spawn")
    assert launch.status_code == 200
    assert 'id="teamhub-launch"' in launch.text
    assert {"cpu-small", "course-cv"} <= set(re.findall(r'name="resource" id="[^"]*" value="([^"]+)"', launch.text))
    r = shipped_hub.spawn_form(client, {"resource": "cpu-small", "sessionMinutes": "30"})
    assert r.status_code == 302 and "spawn-pending" in r.headers["location"], r.text[:500]
    api = shipped_hub.api(shipped_hub.token(client, "local:alice"))
    server = shipped_hub.wait_ready(api, "local:alice")
    lab = httpx.get(f"{shipped_hub.url}{server['url']}api/status", headers={"Authorization": api.headers["Authorization"]}, timeout=30)
    assert lab.status_code == 200, lab.text[:300]
    assert api.delete("/users/local:alice/server").status_code in (202, 204)


def test_the_shipped_venv_has_no_build_tools(shipped_venv):
    # The Dockerfile uninstalls setuptools and wheel after building; the image must not carry them.
    names = os.listdir(next((shipped_venv / "lib").glob("python*/site-packages")))
    assert not [n for n in names if n.startswith(("setuptools", "wheel"))], names
