"""Reading values files the way helm merges them, remembering where every value came from.

PyYAML silently keeps the last of two duplicate keys and forgets line numbers once it builds Python
objects. Operators need both: a duplicate key is an error naming both lines, and every later message
names the file and line of the value it is about. So we compose the node graph ourselves and keep a
map from YAML path (a tuple of keys and list indexes) to (file, line).
"""

from __future__ import annotations

import contextlib
import copy
import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

PathT = tuple  # ("catalog", "teams", "cv", "resources", 1)


class Location(NamedTuple):  # a NamedTuple: one is made per YAML node, so it must be cheap
    file: str
    line: int  # 1-based; 0 when unknown


@dataclass
class Problem:
    """One thing wrong (or worth a warning) in the values, at an exact place."""

    level: str  # "error" or "warning"
    path: PathT
    message: str
    location: Location | None = None

    def __str__(self) -> str:
        where = ""
        if self.location is not None:
            where = f"{self.location.file}:{self.location.line}: " if self.location.line else f"{self.location.file}: "
        prefix = "" if self.level == "error" else "warning: "
        dotted = format_path(self.path)
        return f"{where}{prefix}{dotted + ': ' if dotted else ''}{self.message}"


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "-_" for c in str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{str(part)!r}]"
    return out


class YamlFileError(Exception):
    """The file cannot be read at all (missing, permission, not text): a usage-level failure."""


@dataclass
class Source:
    """Merged values plus where each path was last set."""

    data: dict
    locations: dict = field(default_factory=dict)  # PathT -> Location
    problems: list = field(default_factory=list)  # syntax errors and duplicate keys
    files: list = field(default_factory=list)
    unparsed: list = field(default_factory=list)  # files with YAML syntax errors: their content is unknown

    def locate(self, path: PathT) -> Location | None:
        """The location of a path, or of its closest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.locations:
                return self.locations[path]
            if not path:
                return Location(self.files[-1], 0) if self.files else None
            path = path[:-1]


def _build(node: yaml.Node, path: PathT, fname: str, locations: dict, problems: list) -> Any:
    """Python data for a node; the caller records the node's own line (a key's line for mapping values)."""
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        first_line: dict = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem("error", path, "mapping keys must be plain values", Location(fname, line)))
                continue
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = str(key_node.value)  # JSON has only string keys; keep what the operator wrote
            sub = path + (key,)
            if key in first_line:
                problems.append(
                    Problem(
                        "error",
                        sub,
                        f"duplicate key '{key}' on lines {first_line[key]} and {line}; YAML would silently keep only the last one",
                        Location(fname, line),
                    )
                )
            first_line[key] = line
            locations[sub] = Location(fname, line)
            result[key] = _build(value_node, sub, fname, locations, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            sub = path + (i,)
            locations[sub] = Location(fname, item.start_mark.line + 1)
            items.append(_build(item, sub, fname, locations, problems))
        return items
    return _scalar(node)


_LOADER = yaml.SafeLoader("")
_STR = "tag:yaml.org,2002:str"
# LibYAML composes ~5x faster than the pure-Python parser; both give nodes with the same marks.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(node: yaml.ScalarNode) -> Any:
    if node.tag == _STR:  # most values: skip the constructor machinery
        return node.value
    construct = _LOADER.yaml_constructors.get(node.tag)
    try:
        return construct(_LOADER, node) if construct else node.value
    except (yaml.YAMLError, ValueError):
        return node.value


@contextlib.contextmanager
def paused_gc():
    """Building a large catalog allocates ~100k small objects, and the cyclic collector would run over
    them again and again (3x the parse time). YAML data has no cycles: refcounting frees it all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_text(text: str, fname: str) -> Source:
    """Parse one document; syntax errors become problems instead of exceptions."""
    with paused_gc():
        return _load_text(text, fname)


def _load_text(text: str, fname: str) -> Source:
    locations: dict = {}
    problems: list = []
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem("error", (), f"not valid YAML: {reason}", Location(fname, line)))
        return Source({}, {}, problems, [fname], [fname])
    if node is None:
        return Source({}, {(): Location(fname, 1)}, problems, [fname])
    locations[()] = Location(fname, node.start_mark.line + 1)
    data = _build(node, (), fname, locations, problems)
    if not isinstance(data, dict):
        problems.append(Problem("error", (), "the top level must be a mapping of sections (auth, catalog, sessions, ...)", Location(fname, 1)))
        data = {}
    return Source(data, locations, problems, [fname])


def read_file(path: str | Path) -> Source:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(f"{path}: cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from exc
    return load_text(text, str(path))


def merge(sources: list[Source]) -> Source:
    """Merge like `helm -f a -f b`: maps merge deeply, anything else is replaced, null removes a key."""
    merged = Source({}, {}, [], [])
    for src in sources:
        merged.files.extend(src.files)
        merged.unparsed.extend(src.unparsed)
        merged.problems.extend(src.problems)
        _merge_into(merged.data, src.data, (), merged.locations, src.locations)
    return merged


def _merge_into(dst: dict, src: dict, path: PathT, dst_locs: dict, src_locs: dict) -> None:
    for key, value in src.items():
        sub = path + (key,)
        if value is None:
            dst.pop(key, None)
            drop_locations(dst_locs, sub)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            dst_locs[sub] = src_locs.get(sub, dst_locs.get(sub))
            _merge_into(dst[key], value, sub, dst_locs, src_locs)
        else:
            dst[key] = copy.deepcopy(value)  # never share structure with a source: later files merge into it
            drop_locations(dst_locs, sub)
            for p, loc in src_locs.items():
                if p[: len(sub)] == sub:
                    dst_locs[p] = loc


def drop_locations(locs: dict, prefix: PathT) -> None:
    for p in [p for p in locs if p[: len(prefix)] == prefix]:
        del locs[p]


def nest(source: Source, prefix: PathT) -> Source:
    """The same document placed under `prefix` (a file holding one section of values, e.g. accounts)."""
    data = source.data
    for key in reversed(prefix):
        data = {key: data}
    locations = {tuple(prefix) + p: loc for p, loc in source.locations.items()}
    for i in range(len(prefix)):
        locations.setdefault(tuple(prefix[:i]), source.locations.get((), Location(source.files[-1], 1)))
    return Source(data, locations, list(source.problems), list(source.files), list(source.unparsed))


def load_files(paths: list[str | Path]) -> Source:
    return merge([read_file(p) for p in paths])
