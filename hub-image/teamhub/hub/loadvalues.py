"""Load and check the values for the hub in a forked child, so the check's peak memory is never the hub's.

Checking a large catalog builds a YAML node graph, a line-number map and a schema pass: for 1,000 resources
and 2,000 teams some 40 MiB at the peak. Freed in the hub itself, most of it stays in the hub's resident
memory for good (Python keeps the partly used memory pools), so the hub grew by ~40 MiB over a hub with
a small catalog (issue 12). The child does the same `validation.load` and hands back only what the hub
keeps (the problems and the values with defaults); the hub builds its catalog from those (catalog/loader.py). Where fork is
not available, or the child dies, the hub loads in-process: same result, more memory.
"""

from __future__ import annotations

import os
import pickle

from ..catalog import loader
from ..values import validation
from ..values.source import Source


def load_forked(paths, accounts_file=None, demo: bool = False) -> loader.Checked:
    """Like `loader.load(paths, accounts_file, demo)` (YamlFileError included), minus the source's line map."""
    paths = [str(p) for p in paths]
    outcome = _in_child(paths, accounts_file, demo) if hasattr(os, "fork") else None
    if outcome is None:
        return loader.load(paths, accounts_file, demo)
    kind, payload = outcome
    if kind == "error":
        raise payload
    problems, values = payload
    return loader.with_catalog(validation.Checked(Source(data={}, files=paths), problems, values))


def _in_child(paths, accounts_file=None, demo: bool = False):
    """("ok", (problems, values)) or ("error", exception) from a forked child; None if it gave nothing."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the hub's code
        status = 0
        try:
            os.close(read_end)
            try:
                checked = validation.load(paths, accounts_file, demo)  # the catalog is built in the hub
                outcome = ("ok", (checked.problems, checked.values))
            except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
                outcome = ("error", exc)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(outcome, out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - nothing may escape the child
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as result:
        data = result.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        return None
    return pickle.loads(data)  # noqa: S301 - our own child's output
