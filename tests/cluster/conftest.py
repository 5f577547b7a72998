"""Fixtures of the cluster tier: one control plane per session (`cluster`), a fresh namespace enforcing
Pod Security "restricted" per test (`namespace`). If the control plane cannot start, every test of the
tier fails with the component's log: the tier never skips."""

from __future__ import annotations

import pytest

from .access import Cluster
from .kueue import Kueue


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = Cluster.start(tmp_path_factory.mktemp("cluster"))
    yield c
    leftover = c.stop()
    assert not leftover, f"control plane processes still running after stop: {leftover}"


@pytest.fixture
def namespace(cluster, request):
    name = cluster.new_namespace(request.node.name)
    yield name
    cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def kueue(cluster, tmp_path_factory):
    """Kueue's real manager for the session, queueing the pods of the namespaces it hands out
    (`kueue.managed_namespace`); stopped (webhooks first: they fail closed) with the control plane."""
    manager = Kueue(cluster, tmp_path_factory.mktemp("kueue"))
    try:
        manager.start()
        yield manager
    finally:
        problems = manager.stop()
        assert not problems, problems
