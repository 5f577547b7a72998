"""A git repository served over loopback with git's own smart HTTP (`git http-backend`), for launch links.

Smart HTTP, not the dumb protocol: nbgitpuller clones shallow (`--depth 1`), which dumb HTTP cannot serve.
`GitServer(root).start()` serves every bare repository under `root` at `.url/<name>.git`.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from teamhub.cli.demo import free_port


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def make_repo(root: Path, name: str, files: dict, branch: str = "main") -> Path:
    """A bare repository `root/name.git` with one commit of `files` (path -> text) on `branch`."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-C", str(work)]
    subprocess.run([*git, "init", "-q", "-b", branch], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "week 3"], check=True)
    bare = root / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


class GitServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, self.app, handler_class=_Quiet)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {"GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": environ["PATH_INFO"],
               "QUERY_STRING": environ.get("QUERY_STRING", ""), "REQUEST_METHOD": environ["REQUEST_METHOD"],
               "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""), "CONTENT_LENGTH": str(len(body)),
               "HTTP_GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in head.decode().split("\r\n") if ":" in line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]

    def start(self) -> GitServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def serving(root: Path, repos: dict):
    """The GitServer of bare repositories made under `root` ({"course": files, "course/lab": files}: a name
    may sit in folders), for the `with` block."""
    for name, files in repos.items():
        folder, _, base = name.rpartition("/")
        make_repo(root / folder if folder else root, base, files)
    server = GitServer(root).start()
    try:
        yield server
    finally:
        server.stop()
