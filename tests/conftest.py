"""Fixtures for every tier; plain helpers live in support.py."""

from __future__ import annotations

import pytest
from shipped import shipped_venv as build_shipped_venv
from support import run_teamhub


@pytest.fixture
def teamhub():
    return run_teamhub


@pytest.fixture(scope="session")
def shipped_venv():
    """A virtualenv built exactly as hub-image/Dockerfile builds /opt/teamhub (cached under build/shipped/).
    A cold build pip-installs the whole lock: give the first test that uses it a long pytest.mark.timeout."""
    return build_shipped_venv()
