"""`quota.gpuHours` / `quota.cpuHours` in the values (issue 14): read into the catalog, and a mistake named by
file, line and YAML path like every other."""

from __future__ import annotations

from teamhub.catalog.model import Budget
from test_validation import check, edit, line_of, only_error

ANCHOR = "      resources: [gpu-large]\n"


def test_budgets_are_read_into_the_team():
    result = check(edit({ANCHOR: ANCHOR + "      quota:\n        maxGpus: 2\n        gpuHours: {amount: 400, window: 30d}\n"
                                          "        cpuHours: {amount: 1000.5}\n"}))
    assert result.ok, [str(p) for p in result.problems]
    team = result.catalog.teams["cv"]
    assert team.budgets == (Budget("gpu", 400.0, 30), Budget("cpu", 1000.5, 30))
    assert team.budgets[0].unit == "GPU-hours" and team.max_gpus == 2
    assert result.catalog.teams["everyone"].budgets == ()


def test_a_bad_window_names_file_line_and_path():
    text = edit({ANCHOR: ANCHOR + "      quota:\n        gpuHours: {amount: 400, window: 1 month}\n"})
    err = only_error(check(text))
    assert err.location.line == line_of(text, "window: 1 month")
    assert "catalog.teams.cv.quota.gpuHours.window" in str(err)


def test_an_amount_is_required_and_positive():
    err = only_error(check(edit({ANCHOR: ANCHOR + "      quota:\n        cpuHours: {amount: 0}\n"})))
    assert "catalog.teams.cv.quota.cpuHours.amount" in str(err)
    err = only_error(check(edit({ANCHOR: ANCHOR + "      quota:\n        cpuHours: {window: 7d}\n"})))
    assert "catalog.teams.cv.quota.cpuHours" in str(err) and "amount" in str(err)
