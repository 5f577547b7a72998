"""The hub fixture: one real hub + configurable-http-proxy for the whole module, cleaned up after."""

from __future__ import annotations

import pytest
from hubprocess import DEMO_VALUES, HubProcess, demo_passwords


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = HubProcess(DEMO_VALUES, tmp_path_factory.mktemp("hub"))
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def passwords():
    return demo_passwords()


@pytest.fixture(scope="module")
def alice(hub, passwords):
    """alice's logged-in client on the module's hub."""
    return hub.login("alice", passwords["alice"])


@pytest.fixture(scope="module")
def alice_api(hub, alice):
    """The REST API with a token of alice's."""
    return hub.api(hub.token(alice, "local:alice"))
