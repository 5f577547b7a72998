"""Local accounts: from values (`auth.local.users`) and, optionally, a mounted Secret.

The Secret named by `auth.local.existingSecret` holds YAML in the same format as `auth.local.users`
(login name -> {passwordHash, teams}). The chart mounts its key at LOCAL_USERS_FILE (env
TEAMHUB_LOCAL_USERS_FILE overrides). Accounts in the file win over same-named accounts in values.
The file is read once at hub start: restart the hub after changing the Secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from ..catalog import model as catalog_mod
from ..values import validation

LOCAL_USERS_FILE = "/etc/teamhub/local-users.yaml"
LOCAL_USERS_ENV = "TEAMHUB_LOCAL_USERS_FILE"


class AccountsError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str
    teams: tuple


def local_users_file() -> Path:
    return Path(os.environ.get(LOCAL_USERS_ENV) or LOCAL_USERS_FILE)


def _file_schema() -> dict:
    defs = validation.schema()["$defs"]
    return {
        "$defs": defs,
        "type": "object",
        "propertyNames": {"$ref": "#/$defs/localUserName"},
        "additionalProperties": {"$ref": "#/$defs/localUser"},
    }


def read_users_file(path: Path, team_keys) -> dict:
    """The accounts in a mounted Secret file, checked like values are. Raises AccountsError."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise AccountsError(f"{path}: cannot read the local accounts file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise AccountsError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict) and set(data) == {"users"}:
        data = data["users"] or {}
    problems = [f"{path}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in Draft202012Validator(_file_schema()).iter_errors(data)]
    if not problems:
        for name, user in data.items():
            for team in user.get("teams") or ():
                if team not in team_keys:
                    problems.append(f"{path}: {name}.teams: unknown team '{team}'; define it under catalog.teams")
    if problems:
        raise AccountsError("\n".join(problems))
    return {name: {"passwordHash": u["passwordHash"], "teams": list(u.get("teams") or [])} for name, u in data.items()}


def merge_secret_accounts(checked) -> None:
    """Add the accounts of `auth.local.existingSecret` to `checked.values` and rebuild `checked.catalog`
    so team resolution sees their teams. No-op without an existingSecret."""
    local = checked.values.get("auth", {}).get("local", {})
    if not local.get("enabled") or not local.get("existingSecret"):
        return
    extra = read_users_file(local_users_file(), set(checked.catalog.teams))
    users = dict(local.get("users") or {})
    users.update(extra)
    local["users"] = users
    checked.catalog = catalog_mod.build(checked.values)


def accounts_from_values(values: dict) -> dict:
    users = values.get("auth", {}).get("local", {}).get("users") or {}
    return {name: Account(name, u["passwordHash"], tuple(u.get("teams") or ())) for name, u in users.items()}
