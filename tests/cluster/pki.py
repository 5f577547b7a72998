"""The control plane's certificates, made with openssl: a CA, the API server's serving certificate, a
service-account signing key and one client certificate per identity (the O= becomes its group)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# The names and addresses a client may use for the API server: loopback, and the in-cluster Service
# (10.96.0.1 is the first address of the service range the API server gets).
SERVING_SANS = ("IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local")
# P-256 keys: as good as RSA here and generated in milliseconds.
KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{proc.stderr}")


class Pki:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = Pair(self.dir / "ca.crt", self.dir / "ca.key")
        _openssl("req", "-x509", *KEY, "-keyout", self.ca.key, "-out", self.ca.cert, "-days", "2",
                 "-subj", "/CN=teamhub-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.serving = self._issue("apiserver", "/CN=kube-apiserver", "serverAuth", SERVING_SANS)
        # The service-account token signing key and its public half (for token verification).
        self.sa_key, self.sa_pub = self.dir / "sa.key", self.dir / "sa.pub"
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", self.sa_key)
        _openssl("pkey", "-in", self.sa_key, "-pubout", "-out", self.sa_pub)

    def server(self, name: str, sans) -> Pair:
        """A serving certificate (e.g. kwok's kubelet endpoint, which the API server calls for exec)."""
        return self._issue(name, f"/CN={name}", "serverAuth", sans)

    def client(self, name: str, user: str, group: str | None = None) -> Pair:
        subject = f"/CN={user}" + (f"/O={group}" if group else "")
        return self._issue(name, subject, "clientAuth", ())

    def _issue(self, name: str, subject: str, usage: str, sans) -> Pair:
        pair = Pair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        lines = [f"extendedKeyUsage={usage}", "keyUsage=critical,digitalSignature"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", *KEY, "-keyout", pair.key, "-out", csr, "-subj", subject)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-CAcreateserial",
                 "-out", pair.cert, "-days", "2", "-extfile", ext)
        return pair
