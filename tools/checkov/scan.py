"""`make lint`'s third-party scan: checkov over the chart rendered with every values file in config/ and
config/examples/. A failed check that tools/checkov/exceptions.yaml does not list (with its one-line reason)
fails the build, and so does an exception that no longer matches anything (the list stays true).

Usage: python tools/checkov/scan.py [--checkov PATH] [--helm PATH] [--counts]
  --counts  print failures per values file before exceptions are applied (the figures for a closing note)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXCEPTIONS = Path(__file__).with_name("exceptions.yaml")
KUBE_VERSION = "1.37.0"


def values_files() -> list[Path]:
    config = ROOT / "config"
    return sorted(config.glob("*.yaml")) + sorted((config / "examples").glob("*.yaml"))


def render(helm: str, values: Path, out: Path) -> None:
    proc = subprocess.run([helm, "template", "t", str(ROOT / "chart"), "--namespace", "lab", "--kube-version", KUBE_VERSION,
                           # as a cluster serving it: the admission policy and its parameters are scanned too
                           "--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
                           "-f", str(values)], capture_output=True, text=True, timeout=120)
    if proc.returncode:
        sys.exit(f"helm template -f {values.relative_to(ROOT)} failed:\n{proc.stderr}")
    out.write_text(proc.stdout, encoding="utf-8")


def failures(checkov: str, directory: Path) -> dict[str, set[tuple[str, str]]]:
    """Per rendered file: (check id, resource) of every failed check; resource is checkov's `Kind.namespace.name`.
    One checkov run over the directory: its start-up costs more than the checks."""
    proc = subprocess.run([checkov, "--quiet", "--compact", "--framework", "kubernetes", "--output", "json",
                           "--skip-download", "--directory", str(directory)], capture_output=True, text=True, timeout=900)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        sys.exit(f"checkov failed:\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    found: dict = {}
    for r in report if isinstance(report, list) else [report]:
        for check in r.get("results", {}).get("failed_checks", []):
            found.setdefault(Path(check["file_path"]).name, set()).add((check["check_id"], check["resource"]))
    return found


def load_exceptions() -> list[dict]:
    entries = yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8")) or []
    for e in entries:
        if not (e.get("check") and e.get("resource") and str(e.get("reason", "")).strip()):
            sys.exit(f"{EXCEPTIONS.relative_to(ROOT)}: every exception needs check, resource and a one-line reason: {e}")
    return entries


def excepted(failure: tuple[str, str], entry: dict) -> bool:
    return failure[0] == entry["check"] and fnmatch.fnmatchcase(failure[1], entry["resource"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkov", default=str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    ap.add_argument("--helm", default=str(ROOT / ".tools" / "bin" / "helm"))
    ap.add_argument("--counts", action="store_true")
    args = ap.parse_args(argv)
    exceptions = load_exceptions()
    used = [False] * len(exceptions)
    new: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        names = {}
        for values in values_files():
            name = values.relative_to(ROOT / "config").as_posix()
            names[name] = name.replace("/", "_")
            render(args.helm, values, Path(tmp) / names[name])
        by_file = failures(args.checkov, Path(tmp))
    for name, rendered in names.items():
        found = by_file.get(rendered, set())
        if args.counts:
            print(f"{name}: {len(found)} failed checks, {len({c for c, _ in found})} distinct check ids")
        for failure in sorted(found):
            hits = [i for i, e in enumerate(exceptions) if excepted(failure, e)]
            for i in hits:
                used[i] = True
            if not hits:
                new.append(f"{name}: {failure[0]} on {failure[1]}")
    stale = [f"{e['check']} on {e['resource']}" for e, u in zip(exceptions, used, strict=True) if not u]
    for line in new:
        print(f"checkov: new failure: {line}")
    for line in stale:
        print(f"checkov: exception matches nothing any more, remove it from {EXCEPTIONS.relative_to(ROOT)}: {line}")
    if new or stale:
        return 1
    print(f"checkov: {len(values_files())} values files, no failure beyond {len(exceptions)} listed exceptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
