"""Fixtures of the bundle tier: two real registries on loopback, a "public" one (seeded by each test with
bundlereg.seed) and a "site" one; and a registry as a campus runs one, with TLS and a login."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from bundlereg import PASSWORD, Registry, write_values


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    public, site = Registry(root, "public").start(), Registry(root, "site").start()
    yield public, site
    public.stop()
    site.stop()


@pytest.fixture(scope="module")
def workspace(registries, tmp_path_factory):
    """The two registries, a folder, and a values file naming every image in the public one (not yet seeded)."""
    public, site = registries
    tmp = tmp_path_factory.mktemp("bundle")
    values_file = tmp / "test-values.yaml"
    return SimpleNamespace(public=public, site=site, tmp=tmp, values_file=values_file,
                           refs=write_values(public.host, values_file))


@pytest.fixture(scope="module")
def secure_site(tmp_path_factory):
    """A site registry as a campus runs one: TLS (a test CA the tools trust through SSL_CERT_FILE) and a login."""
    import bcrypt
    from cluster.pki import Pki

    root = tmp_path_factory.mktemp("secure")
    pki = Pki(root / "pki")
    pair = pki.server("registry", ("IP:127.0.0.1",))
    htpasswd = root / "htpasswd"
    htpasswd.write_text("ops:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode() + "\n")
    site = Registry(root, "secure", tls=(pair.cert, pair.key), htpasswd=htpasswd).start(ca=pki.ca.cert)
    yield site, pki.ca.cert
    site.stop()
