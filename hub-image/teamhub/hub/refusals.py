"""A refused or failed start is a `SpawnException` (spawnerrors.py), which JupyterHub logs without a traceback:
except `Spawner._run_apply_user_options` in JupyterHub 6.1.1, which logs whatever the `apply_user_options` hook
raises with `log.exception`, a SpawnException included, although SpawnException's own contract is "no
traceback should be logged". `FILTER` on the hub's logger keeps that line and drops its traceback, for
SpawnExceptions only: every other exception keeps its traceback.
"""

from __future__ import annotations

import json
import logging

from jupyterhub.spawner import SpawnException

LOGGER = logging.getLogger("JupyterHub")  # the application's and the spawners' logger


class SpawnExceptionTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SpawnException):
            record.exc_info, record.exc_text = None, None
        return True


FILTER = SpawnExceptionTraceback()


def install() -> None:
    if FILTER not in LOGGER.filters:
        LOGGER.addFilter(FILTER)


def describe_request(options, limit: int = 200) -> str:
    """The request as one short line for the log (a person may send anything)."""
    try:
        text = json.dumps(options, sort_keys=True, ensure_ascii=True, default=repr)
    except ValueError:  # e.g. an int too long to print
        text = "(unprintable)"
    return text if len(text) <= limit else text[:limit] + "..."
