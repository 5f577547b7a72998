"""Generated files derived from the schema source, and the check that they are current."""

from __future__ import annotations

import json
from pathlib import Path

from .validation import schema

# The repository layout: hub-image/teamhub/schema_tools.py -> repository root.
ROOT = Path(__file__).resolve().parents[2]
CHART_SCHEMA = ROOT / "chart" / "values.schema.json"


def render_chart_schema() -> str:
    return json.dumps(schema(), indent=2, sort_keys=False) + "\n"


def outputs() -> dict:
    """Path -> expected content of every generated file."""
    return {CHART_SCHEMA: render_chart_schema()}


def write_outputs() -> list:
    written = []
    for path, content in outputs().items():
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_outputs() -> list:
    return [p for p, content in outputs().items() if not p.exists() or p.read_text(encoding="utf-8") != content]
