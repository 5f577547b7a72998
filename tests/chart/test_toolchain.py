"""The chart tier's toolchain: helm 3 and 4 accept every shipped values file and refuse bad ones through
the generated schema; helm-unittest runs the suites in chart/tests/."""

from __future__ import annotations

import subprocess

import pytest
from conftest import CONFIG, ROOT, TOOLS

HELMS = ["helm", "helm4"]
VALUES = sorted(CONFIG.rglob("*.yaml"))


def helm(binary: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(TOOLS / binary), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("binary", HELMS)
def test_helm_versions_are_the_pinned_ones(binary):
    out = helm(binary, "version", "--short").stdout
    assert out.startswith({"helm": "v3.", "helm4": "v4."}[binary]), out


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.relative_to(CONFIG).as_posix())
@pytest.mark.parametrize("binary", HELMS)
def test_lint_and_template_every_values_file(binary, values):
    lint = helm(binary, "lint", "--strict", "chart", "-f", values)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm(binary, "template", "teamhub", "chart", "--kube-version", "1.31.0", "-f", values)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Secret" in rendered.stdout


@pytest.mark.parametrize("binary", HELMS)
def test_schema_refuses_bad_values(binary, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sessions:\n  maxMinuts: 30\ncatalog:\n  resources:\n    cpu-small:\n      memory: {request: 4GB}\n")
    result = helm(binary, "template", "teamhub", "chart", "--kube-version", "1.31.0", "-f", CONFIG / "values.yaml", "-f", bad)
    assert result.returncode != 0
    assert "maxMinuts" in result.stderr and "4GB" in result.stderr


def test_helm_unittest_suites_pass():
    result = subprocess.run([str(TOOLS / "helm-unittest"), "chart"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = next(line for line in result.stdout.splitlines() if line.startswith("Tests:"))
    assert "failed" not in summary and "passed" in summary, summary
