"""The Grafana dashboard in docs/ (issue 14) only queries metrics the hub exports (teamhub/usage/metrics.py; JupyterHub's
spawn metric for start outcomes)."""

from __future__ import annotations

import json
import re

from support import ROOT
from teamhub.usage import metrics

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
# PromQL words that are not metric names: functions, aggregation keywords, and label names after by/without.
PROMQL = {"sum", "by", "increase", "rate", "histogram_quantile", "le", "team", "resource", "accelerator", "reason",
          "label_values", "without", "avg", "max", "min", "status"}


def queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    out = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    out += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', " ", expr)  # label matchers, ranges, strings
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in PROMQL}


def test_every_query_names_an_exported_metric():
    found = [(q, metric_names(q)) for q in queries()]
    assert len(found) >= 8
    for query, names in found:
        assert names, f"no metric in {query!r}"
        assert names <= set(metrics.EXPORTED), f"{query!r} names {sorted(names - set(metrics.EXPORTED))}, not exported by the hub"


def test_the_check_catches_a_metric_the_hub_does_not_export():
    assert metric_names('sum by (team) (rate(teamhub_gpu_hours_total{team="x"}[5m]))') == {"teamhub_gpu_hours_total"}
    assert "teamhub_gpu_hours_total" not in metrics.EXPORTED
