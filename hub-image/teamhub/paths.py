"""Where things are inside the hub image (docs/architecture.md, "Contracts between the chart and the hub
image"). Environment variables override each for local runs and tests."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_VALUES = "/etc/teamhub/values.yaml"  # env TEAMHUB_VALUES (several files: separated by os.pathsep)
DEFAULT_DATA_DIR = "/srv/teamhub/data"  # env TEAMHUB_DATA_DIR
DEFAULT_LOCAL_USERS = "/etc/teamhub/local-users.yaml"  # env TEAMHUB_LOCAL_USERS_FILE: auth.local.existingSecret's key


def data_dir(environ=os.environ) -> Path:
    return Path(environ.get("TEAMHUB_DATA_DIR") or DEFAULT_DATA_DIR)


def values_files(environ=os.environ) -> list[Path]:
    """The values files, merged in order like helm -f. The chart gives one; `teamhub demo` gives the operator's
    values and the demo overlay (config/demo/values.yaml), separated by os.pathsep like PATH."""
    return [Path(p) for p in (environ.get("TEAMHUB_VALUES") or DEFAULT_VALUES).split(os.pathsep) if p]


def values_file(environ=os.environ) -> Path:
    """The first values file: the chart's one, beside which it puts release-revision."""
    return (values_files(environ) or [Path(DEFAULT_VALUES)])[0]


def local_users_file(environ=os.environ) -> Path:
    return Path(environ.get("TEAMHUB_LOCAL_USERS_FILE") or DEFAULT_LOCAL_USERS)


def release_revision(environ=os.environ) -> str:
    """The helm revision the hub was started by: env TEAMHUB_RELEASE_REVISION, else the file `release-revision`
    the chart puts beside the values file; "" when neither exists (local runs)."""
    if environ.get("TEAMHUB_RELEASE_REVISION"):
        return environ["TEAMHUB_RELEASE_REVISION"]
    try:
        return (values_file(environ).parent / "release-revision").read_text(encoding="utf-8").strip()[:16]
    except OSError:
        return ""
