"""A refused start is the person's mistake, not a hub fault: one INFO line, no ERROR, no traceback.

`TeamhubMixin.teamhub_apply` logs the refusal once (user, request, reason) and raises it as an HTTPError,
which JupyterHub 6 needs to show the sentence on the launch page or in the REST answer. On its way up
JupyterHub logs that same error three or four more times: `Spawner._run_apply_user_options`
(log.exception), `User.spawn` (log.error), the form handler (log.error with the traceback), the spawn
page (log.error), and Tornado says it once more as a warning (`403 POST ...: <reason>`). `FILTER`, on the
hub's and Tornado's loggers, drops exactly those echoes: records that carry a refusal as their
exception, and WARNING/ERROR lines that repeat the reason of a refusal raised moments before. Every
other error, and every traceback of a real fault, passes untouched; the access log line stays.
"""

from __future__ import annotations

import json
import logging
from collections import deque

# The application's logger (handlers, spawners), Tornado's application logger (`User.spawn`) and its
# general logger (HTTPError warnings): JupyterHub renames the latter two but keeps the same objects.
LOGGERS = tuple(logging.getLogger(name) for name in ("JupyterHub", "tornado.application", "tornado.general"))


class RefusalFilter(logging.Filter):
    def __init__(self, remember: int = 256):
        super().__init__()
        self._recent: deque[str] = deque(maxlen=remember)

    def refused(self, err: Exception) -> Exception:
        """Mark `err` as a refusal whose echoes are not logged again; returns it."""
        err.teamhub_refusal = True
        self._recent.append(getattr(err, "jupyterhub_message", None) or str(err))
        return err

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            return not getattr(exc, "teamhub_refusal", False)
        if record.levelno < logging.WARNING or not self._recent:
            return True
        text = record.getMessage()
        return not any(r in text for r in self._recent)


FILTER = RefusalFilter()


def install() -> None:
    for logger in LOGGERS:
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)


def describe_request(options, limit: int = 200) -> str:
    """The request as one short line for the log (a person may send anything)."""
    try:
        text = json.dumps(options, sort_keys=True, ensure_ascii=True, default=repr)
    except ValueError:  # e.g. an int too long to print
        text = "(unprintable)"
    return text if len(text) <= limit else text[:limit] + "..."
