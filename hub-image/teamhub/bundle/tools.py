"""Every registry request goes through crane (go-containerregistry's CLI, built at a pinned version by
scripts/setup.sh) or, for a push, tools/bundle-push (the same library at the same version, built by setup: each
blob sent once and mounted into the other repositories): no registry client of our own.

What this module adds around it:
- Plain HTTP only when asked. crane quietly falls back to plain HTTP for loopback and private addresses;
  a registry not named with --plain-http must therefore answer a TLS handshake first (`require_tls`), so
  an image is never fetched or pushed unencrypted by accident.
- Credentials from the docker config file crane reads anyway (DOCKER_CONFIG or ~/.docker/config.json), or
  from flags: written into a private temporary DOCKER_CONFIG (mode 0600) for the call, never into argv
  (visible in `ps`), never printed.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


class ToolError(Exception):
    pass


def crane_binary() -> str:
    found = os.environ.get("TEAMHUB_CRANE") or shutil.which("crane")
    if not found:
        raise ToolError("crane is not installed: run `make setup` (it builds crane into .tools/bin) or put crane on PATH")
    return found


def bundle_push_binary() -> str:
    """tools/bundle-push (go-containerregistry, like crane): pushes a layout's images, each blob once."""
    found = os.environ.get("TEAMHUB_BUNDLE_PUSH") or shutil.which("bundle-push")
    if not found:
        raise ToolError("bundle-push is not installed: run `make setup` (it builds tools/bundle-push into .tools/bin)")
    return found


def split_host(host: str) -> tuple[str, int]:
    """"registry.example.org:5000" -> ("registry.example.org", 5000); "[::1]:5000" -> ("::1", 5000)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest.lstrip(":") or 443)
    name, _, port = host.partition(":")
    return name, int(port or 443)


def _falls_back_to_http(host: str) -> bool:
    """crane's own rule (name.Registry.Scheme): these hosts are tried over plain HTTP when TLS fails."""
    hostname = split_host(host)[0]
    if hostname == "localhost" or hostname.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def require_tls(host: str, timeout: float = 5.0) -> None:
    """Refuse, with a sentence, a registry that crane would reach over plain HTTP without being told to."""
    if not _falls_back_to_http(host):
        return
    hostname, port = split_host(host)
    try:
        with socket.create_connection((hostname, port), timeout=timeout) as sock:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # crane verifies; here only: does it speak TLS?
            with ctx.wrap_socket(sock, server_hostname=hostname):
                return
    except ssl.SSLError as exc:
        raise ToolError(f"registry {host} does not speak TLS ({exc.reason or exc}); pass --plain-http {host} "
                        "to use plain HTTP with it (only for a registry on this machine or a network you trust)") from exc
    except OSError as exc:
        raise ToolError(f"registry {host} cannot be reached: {exc}") from exc


ANY_REGISTRY = "*"  # credentials given by flag before the registry is known (create: the images' one registry)


@dataclass
class Registries:
    """How to talk to registries: the hosts allowed plain HTTP, and credentials given as flags."""

    plain_http: set = field(default_factory=set)
    logins: dict = field(default_factory=dict)  # host -> (username, password)
    checked: set = field(default_factory=set)

    def flags(self, host: str) -> list:
        if host in self.plain_http:
            return ["--insecure"]
        if host not in self.checked:
            require_tls(host)
            self.checked.add(host)
        return []

    @contextmanager
    def environment(self):
        """os.environ for crane, with a private docker config holding the flags' credentials (if any)."""
        env = dict(os.environ)
        if not self.logins:
            yield env
            return
        source = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
        config = json.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}
        auths = config.setdefault("auths", {})
        for host, (user, password) in self.logins.items():
            auths[host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
            config.get("credHelpers", {}).pop(host, None)  # the flags win over a helper for that host
        with tempfile.TemporaryDirectory(prefix="teamhub-docker-config-") as tmp:
            path = Path(tmp) / "config.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(config, f)
            env["DOCKER_CONFIG"] = tmp
            yield env


def crane(registries: Registries, host: str, *args, stdout=subprocess.PIPE, timeout=None) -> subprocess.CompletedProcess:
    """Run crane for one registry; its error output becomes the exception's sentence."""
    with registries.environment() as env:
        proc = subprocess.run([crane_binary(), *registries.flags(host), *args], stdout=stdout,
                              stderr=subprocess.PIPE, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise ToolError(tool_error(proc.stderr))
    return proc


_running: set = set()  # crane processes streaming now: ended at once when a create is interrupted
_running_lock = threading.Lock()


_interrupted = threading.Event()  # Ctrl-C seen: start no new download


def interrupted() -> bool:
    return _interrupted.is_set()


def stop_streams() -> None:
    """End every running download (Ctrl-C): their readers see a short blob and keep nothing of it."""
    with _running_lock:
        _interrupted.set()
        for proc in _running:
            if proc.poll() is None:
                proc.kill()


@contextmanager
def crane_stream(registries: Registries, host: str, *args):
    """crane with its standard output as a stream (blob downloads, counted as they arrive)."""
    with registries.environment() as env:
        proc = subprocess.Popen([crane_binary(), *registries.flags(host), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        with _running_lock:
            _running.add(proc)
            if _interrupted.is_set():  # started as Ctrl-C was handled: stop_streams() may have missed it
                proc.kill()
        try:
            yield proc.stdout
            err = proc.stderr.read()
            if proc.wait() != 0:
                raise ToolError(tool_error(err))
        finally:
            with _running_lock:
                _running.discard(proc)
            if proc.poll() in (-signal.SIGINT, -signal.SIGTERM):
                # Ctrl-C reaches the whole process group: crane may see it before Python does, and this
                # thread must not start the next download before the main thread stops everything
                _interrupted.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def tool_error(stderr: bytes) -> str:
    """The last error line of crane or bundle-push, with a hint when the registry wants a login."""
    text = stderr.decode(errors="replace").strip()
    lines = [line.split("Error: ", 1)[-1] for line in text.splitlines() if line.strip()]
    message = lines[-1] if lines else "crane failed without a message"
    if "401" in message or "UNAUTHORIZED" in message:
        message += (" (the registry wants a login: credentials from the docker config file, e.g. after "
                    "`crane auth login`, or --username with --password-stdin)")
    return message
