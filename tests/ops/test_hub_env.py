"""The hub image's Python environment, built from hub-image/requirements.txt the way the Dockerfile does
(a fresh virtualenv, --no-deps, then the teamhub package as a wheel), proves the image's contents without a
Docker engine: the lock is complete and consistent, the package and its data files install, the hub starts."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml
from support import CONFIG, ROOT

from .hubenv import free_port, hub_venv, install_teamhub, stop_tree, wait_http

HUB_CONFIG = ROOT / "hub-image" / "jupyterhub_config.py"


@pytest.fixture(scope="module")
def venv():
    v = hub_venv()
    install_teamhub(v)
    return v


def test_lock_is_complete_and_consistent(venv):
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_installed_package_validates_values(venv):
    r = subprocess.run([str(venv / "bin" / "teamhub"), "validate", str(CONFIG / "values.yaml")], capture_output=True, text=True,
                       timeout=120, cwd="/", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0, r.stdout + r.stderr


def test_singleuser_images_use_the_hubs_jupyterhub_version():
    lock = (ROOT / "hub-image" / "requirements.txt").read_text()
    hub_version = re.search(r"^jupyterhub==(\S+)$", lock, re.M).group(1)
    manifest = yaml.safe_load((ROOT / "dockerfiles" / "images.yaml").read_text())
    versions = {k: v.get("buildArgs", {}).get("JUPYTERHUB_VERSION") for k, v in manifest["images"].items()}
    assert {v for v in versions.values() if v} == {hub_version}, versions


def test_hub_starts_from_the_image_environment(venv, tmp_path):
    port, hub_port, api_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TEAMHUB_MODE="local", TEAMHUB_VALUES=str(CONFIG / "values.yaml"), TEAMHUB_DATA_DIR=str(tmp_path),
               TEAMHUB_BIND_URL=f"http://127.0.0.1:{port}", TEAMHUB_HUB_PORT=str(hub_port), TEAMHUB_PROXY_API_PORT=str(api_port),
               PATH=os.pathsep.join([str(venv / "bin"), str(ROOT / "node_modules" / ".bin"), env["PATH"]]))
    log = (tmp_path / "hub.log").open("w")
    proc = subprocess.Popen([str(venv / "bin" / "jupyterhub"), "-f", str(HUB_CONFIG), "--ip=127.0.0.1", f"--port={port}",
                             f"--JupyterHub.hub_port={hub_port}", f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/hub/health", 120, proc) == 200
    finally:
        stop_tree(proc)
        log.close()
        print((tmp_path / "hub.log").read_text()[-3000:])
