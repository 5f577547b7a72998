"""Per-user origins: `hub.subdomainHost` read once, for the hub (JupyterHub's `subdomain_host`), launch links
and `teamhub validate`. The chart reads the same key in its helpers (`teamhub.subdomain.*`).

Without it every person's server is a path on the hub's origin (`/user/<name>/`), so script one server
serves (a notebook's output, a page a pulled repository contains) runs with the hub's origin and can call the
hub as that person. With it each server gets `<name>.<host>`: another origin, which the browser keeps apart
from the hub's and from every other server's cookies and storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .source import Problem


@dataclass(frozen=True)
class Origin:
    scheme: str  # http or https
    host: str  # the hub's host name; people's servers are <name>.<host>
    port: int | None

    @property
    def url(self) -> str:
        """As JupyterHub's subdomain_host wants it: scheme://host[:port], no path."""
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port else "")

    @property
    def wildcard(self) -> str:
        return f"*.{self.host}"


def parse(value) -> Origin | None:
    """`https://hub.example.org`, `hub.example.org` (https, as JupyterHub assumes), `http://hub.localhost:8000`;
    None for "" or a value the schema refuses (the schema says why; this only reads a well-formed value)."""
    if not isinstance(value, str) or not value:
        return None
    parts = urlsplit(value if "://" in value else f"https://{value}")
    try:
        port = parts.port
    except ValueError:  # above 65535: see problems()
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        return None
    return Origin(parts.scheme, parts.hostname, port)


def _port_out_of_range(value: str) -> bool:
    try:
        port = urlsplit(value if "://" in value else f"https://{value}").port
    except ValueError:
        return True
    return port == 0


def of_values(values: dict) -> Origin | None:
    return parse(((values or {}).get("hub") or {}).get("subdomainHost"))


def problems(data: dict) -> list[Problem]:
    """What JSON Schema cannot say about hub.subdomainHost and the Ingress that must serve it."""
    hub, ingress = data.get("hub") or {}, data.get("ingress") or {}
    if not isinstance(hub, dict) or not isinstance(ingress, dict):
        return []
    value, out = hub.get("subdomainHost"), []
    path = ("hub", "subdomainHost")
    origin = parse(value)
    if isinstance(value, str) and value and origin is None:
        if _port_out_of_range(value):  # the schema's pattern allows five digits; anything else it reports itself
            out.append(Problem("error", path, f"{value!r}: the port must be 1 to 65535"))
        return out
    tls_secret = ingress.get("subdomainTlsSecretName")
    if origin is None:
        if tls_secret:
            out.append(Problem("warning", ("ingress", "subdomainTlsSecretName"),
                               "has no effect without hub.subdomainHost (per-user origins are off)"))
        return out
    tls = [t for t in ingress.get("tls") or [] if isinstance(t, dict)]
    covered = {h for t in tls for h in t.get("hosts") or []}
    if (ingress.get("enabled") is True and origin.scheme == "https" and tls and not tls_secret
            and origin.wildcard not in covered):
        out.append(Problem("warning", ("ingress", "subdomainTlsSecretName"),
                           f"empty, and ingress.tls has no certificate for {origin.wildcard}: people's servers would "
                           "get the ingress controller's default certificate; name the wildcard certificate's Secret here"))
    public = urlsplit(str(((data.get("launchLinks") or {}).get("publicUrl")) or ""))
    if public.hostname and public.hostname != origin.host:
        out.append(Problem("warning", ("launchLinks", "publicUrl"),
                           f"its host {public.hostname} is not hub.subdomainHost's ({origin.host}): the hub signs people "
                           "in on hub.subdomainHost, so links should point there"))
    return out
