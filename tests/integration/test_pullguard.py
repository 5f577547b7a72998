"""The pull guard inside the single-user server (issue 23, findings 1 and 3): a real Jupyter server with the
venv's nbgitpuller, configured as the images configure it (teamhub/pullguard/etc, TEAMHUB_ALLOWED_REPOS),
pulling from git repositories served over loopback (tests/gitserve.py).

Before: `/git-pull?repo=ANY` (reachable as /hub/user-redirect/git-pull from any page) pulled any repository,
and nbgitpuller's page printed `urlpath` unescaped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gitserve import serving
from teamhub.cli.demo import free_port
from teamhub.hub.config import PULLGUARD_CONFIG

TOKEN = "pullguard-test-token"
MARKUP = "<svg/onload=alert(document.domain)>"


class JupyterServer:
    def __init__(self, root: Path, allowed: str, config_first: Path | None = None):
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config = os.pathsep.join(str(p) for p in (config_first, PULLGUARD_CONFIG) if p)
        env = {**os.environ, "JUPYTER_CONFIG_PATH": config, "TEAMHUB_ALLOWED_REPOS": allowed,
               "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "HOME": str(root)}
        env.pop("JUPYTERHUB_API_TOKEN", None)
        self.log = (root / "server.log").open("w")
        (root / "home").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={self.port}",
                                      "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
                                      f"--ServerApp.root_dir={root / 'home'}",
                                      *(["--allow-root"] if os.geteuid() == 0 else [])],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"token {TOKEN}"},
                                   timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (root / "server.log").read_text()
            try:
                if self.client.get("/api/status").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError((root / "server.log").read_text())

    def pull(self, **query) -> tuple:
        """(status, the event stream) of nbgitpuller's API, which does the pull."""
        r = self.client.get("/git-pull/api", params=query)
        return r.status_code, r.text

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    repos = {"course/lab": {"week3/lab.ipynb": "{}", "README.md": "course"}, "course-evil/x": {"EVIL.md": "not allowed"},
             "evil": {"EVIL.md": "not allowed"}}
    with serving(tmp_path_factory.mktemp("git"), repos) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, git):
    s = JupyterServer(tmp_path_factory.mktemp("user"), json.dumps([f"{git.url}/course"]))
    yield s
    s.stop()


def home(server) -> set:
    return {p.relative_to(server.root / "home").as_posix() for p in (server.root / "home").rglob("*") if ".git" not in p.parts}


def test_an_allowed_repository_is_pulled(server, git):
    status, events = server.pull(repo=f"{git.url}/course/lab.git", targetpath="lab", branch="main")
    assert status == 200 and '"phase": "finished"' in events, events[-800:]
    assert (server.root / "home" / "lab" / "week3" / "lab.ipynb").exists()


@pytest.mark.parametrize("repo, status", [
    ("GIT/evil.git", 403),                          # off the list (finding 3)
    ("GIT/course-evil/x.git", 403),                 # a prefix that is not a whole segment
    ("GIT/course/../course-evil/x.git", 400),       # dot segments (finding 2)
    ("GIT/course/%2e%2e/evil.git", 400),
    ("GIT/course/..%2fevil.git", 400),
    ("GIT/course/%ef%bc%8e%ef%bc%8e/evil.git", 400),
    ("GIT/course\\..\\evil.git", 400),
])
def test_other_repositories_are_refused_and_nothing_is_pulled(server, git, repo, status):
    before = home(server)
    code, text = server.pull(repo=repo.replace("GIT", git.url), targetpath="other")
    assert code == status, text[-500:]
    assert home(server) == before and "EVIL.md" not in "".join(before)


@pytest.mark.parametrize("field, value", [("targetpath", "../outside"), ("targetpath", "/tmp/x"), ("branch", "--upload-pack=x"),
                                          ("urlpath", MARKUP), ("subpath", "../..")])
def test_fields_outside_the_grammar_are_refused(server, git, field, value):
    code, _ = server.pull(repo=f"{git.url}/course/lab.git", **{field: value})
    assert code == 400
    assert not (server.root / "outside").exists()


def test_the_status_page_renders_no_markup_from_the_request(server, git):
    """Finding 1: nbgitpuller 1.3.0 printed urlpath into its page unescaped (script on the hub's origin)."""
    page = server.client.get("/git-pull", params={"repo": f"{git.url}/course/lab.git", "urlpath": MARKUP})
    assert page.status_code == 400 and "<svg" not in page.text
    page = server.client.get("/git-pull", params={"repo": f"{git.url}/course/lab.git", "urlpath": "lab/tree/lab/week3/lab.ipynb"})
    assert page.status_code == 200 and "Synchronizing" in page.text
    assert 'href="http://127.0.0.1' in page.text  # the canonical repository, escaped by the autoescaping page
    for old in ("/git-sync", "/interact"):  # nbgitpuller's old addresses, which redirected around a check
        assert server.client.get(old, params={"repo": "evil"}, follow_redirects=False).status_code == 404


@pytest.mark.filterwarnings("ignore:Guessing base JupyterHandler class")
def test_the_guards_page_environment_escapes():
    """The page environment the guard installs for nbgitpuller: a value that reached the page is text."""
    from nbgitpuller import handlers as nbgp
    from teamhub.pullguard.extension import page_environment

    html = page_environment(nbgp).get_template("status.html").render(repo=f'x" onmouseover="{MARKUP}', path=MARKUP, base_url="/", targetpath="t",
                                                  static_url=lambda p, **kw: p)
    assert MARKUP not in html and "&lt;svg" in html


def test_without_a_readable_allow_list_there_is_no_pull_at_all(tmp_path, git):
    """Fails closed: the guard does not load, and nbgitpuller's own extension is off (the images' config)."""
    s = JupyterServer(tmp_path, "not json")
    try:
        assert s.client.get("/git-pull/api", params={"repo": f"{git.url}/course/lab.git"}).status_code == 404
        assert s.client.get("/git-pull", params={"repo": f"{git.url}/course/lab.git"}).status_code == 404
    finally:
        s.stop()
    s = JupyterServer(tmp_path / "unset", "")
    try:
        assert s.pull(repo=f"{git.url}/course/lab.git")[0] == 403  # unset: nothing allowed
    finally:
        s.stop()


def test_the_guard_answers_even_beside_nbgitpullers_own_extension(tmp_path, git):
    """An image that forgot to turn nbgitpuller's extension off: the guard's routes come first."""
    first = tmp_path / "config"
    (first / "jupyter_server_config.d").mkdir(parents=True)
    (first / "jupyter_server_config.d" / "z.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"nbgitpuller": True, "teamhub.pullguard": True}}}))
    s = JupyterServer(tmp_path / "user", json.dumps([f"{git.url}/course"]), config_first=first)
    try:
        assert "nbgitpuller | extension was successfully loaded" in (s.root / "server.log").read_text()
        assert s.pull(repo=f"{git.url}/evil.git", targetpath="evil")[0] == 403
        assert not (s.root / "home" / "evil").exists()
    finally:
        s.stop()
