"""Values files in, the checked values and their catalog out.

`values.validation` checks the values (and knows nothing of the catalog); `model.build` makes the catalog of
values without errors. Everything that needs the catalog (the hub, the `teamhub` command, the tests) loads
through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..values import validation
from ..values.source import Source, paused_gc
from ..values.validation import InvalidValues
from . import model

__all__ = ["Checked", "InvalidValues", "check", "load", "load_or_raise", "with_catalog"]


@dataclass
class Checked(validation.Checked):
    """The checked values and, when there are no errors, the catalog built from them."""

    catalog: model.Catalog | None = None


def with_catalog(result: validation.Checked) -> Checked:
    if not result.ok:
        return Checked(result.source, result.problems, result.values)
    with paused_gc():  # a large catalog allocates many small objects at once, as the check does
        return Checked(result.source, result.problems, result.values, model.build(result.values))


def check(source: Source, demo: bool = False) -> Checked:
    """`demo`: as `teamhub demo` checks (the demo accounts' published hashes allowed; values/demohashes.py)."""
    return with_catalog(validation.check(source, demo))


def load(paths, accounts_file: str | Path | None = None, demo: bool = False) -> Checked:
    """`validation.load` (read, merge like helm -f, check; YamlFileError for unreadable files) plus the catalog."""
    return with_catalog(validation.load(paths, accounts_file, demo))


def load_or_raise(paths, accounts_file: str | Path | None = None, demo: bool = False) -> Checked:
    result = load(paths, accounts_file, demo)
    if not result.ok:
        raise InvalidValues(result.errors)
    return result
