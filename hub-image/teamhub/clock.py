"""The hub's clock: epoch seconds for session deadlines and usage records, moved forward by the test clock.

Below every other layer (usage/ stamps its records with it, hub/ its deadlines), so both read one time."""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, datetime
from pathlib import Path

# Tests only (the chart never sets it): a file holding seconds to add to the clock, so a test moves a
# running session past its deadline without waiting and without shortening what people may choose.
TEST_CLOCK_ENV = "TEAMHUB_TEST_CLOCK_FILE"


def test_clock(environ=os.environ) -> Path | None:
    return Path(environ[TEST_CLOCK_ENV]) if environ.get(TEST_CLOCK_ENV) else None


def now(environ=os.environ) -> float:
    clock = test_clock(environ)
    if clock is None:
        return time.time()
    try:
        return time.time() + float(clock.read_text() or 0)
    except FileNotFoundError:
        return time.time()


@functools.lru_cache(maxsize=1024)  # the server list shows each server's end on every page view
def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
