"""A real PostgreSQL server from Debian's packages for tests: initdb in a temporary folder, a loopback port,
stopped and removed afterwards. Runs as the `postgres` system user when the tests run as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .hubenv import free_port


def pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


@dataclass
class PgServer:
    root: Path
    port: int
    user: str
    password: str
    bindir: Path

    def url(self, db: str, with_password: bool = False) -> str:
        auth = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def createdb(self, name: str) -> None:
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
                       check=True, env=dict(os.environ, PGPASSWORD=self.password), capture_output=True, timeout=60)

    def psql(self, db: str, sql: str) -> str:
        r = subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", db, "-tAc", sql],
                           check=True, env=dict(os.environ, PGPASSWORD=self.password), capture_output=True, text=True, timeout=60)
        return r.stdout.strip()


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else cmd


def start(tls=None) -> PgServer:
    """`tls` (optional): (server certificate, its key, CA certificate) files. The server then admits TCP clients only
    over TLS with a client certificate that CA issued for the user name (pg_hba `hostssl ... cert`)."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (make setup installs them)")
    root = Path(tempfile.mkdtemp(prefix="teamhub-pg-"))
    password = "s3cret-test-pass"
    (root / "pw").write_text(password + "\n")
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    if tls is not None:
        (root / "tls").mkdir()
        for src, name in zip(tls, ("server.crt", "server.key", "ca.crt"), strict=True):
            shutil.copyfile(src, root / "tls" / name)
        (root / "tls" / "server.key").chmod(0o600)  # the server refuses a key others can read
        options += (f" -c ssl=on -c ssl_cert_file={root / 'tls' / 'server.crt'} -c ssl_key_file={root / 'tls' / 'server.key'}"
                    f" -c ssl_ca_file={root / 'tls' / 'ca.crt'}")
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in (root, *root.rglob("*")):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(root / "data"), "--username=teamhub", f"--pwfile={root / 'pw'}",
                              "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True, timeout=180)
    if tls is not None:
        (root / "data" / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 cert\n")  # same owner
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-t", "60",
                              "-o", options, "start"]),
                   check=True, capture_output=True, timeout=120)
    return PgServer(root, port, "teamhub", password, bindir)


def stop(server: PgServer) -> None:
    subprocess.run(_as_owner([str(server.bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate", "-w", "stop"]),
                   capture_output=True, timeout=120)
    shutil.rmtree(server.root, ignore_errors=True)
