"""Fixtures of the bundle tier: two real registries on loopback, a "public" one (seeded by each test with
bundlereg.seed) and a "site" one."""

from __future__ import annotations

import pytest
from bundlereg import Registry


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    public, site = Registry(root, "public").start(), Registry(root, "site").start()
    yield public, site
    public.stop()
    site.stop()
