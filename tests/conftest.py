"""Fixtures for every tier; plain helpers live in support.py."""

from __future__ import annotations

import pytest
from support import run_teamhub


@pytest.fixture
def teamhub():
    return run_teamhub
