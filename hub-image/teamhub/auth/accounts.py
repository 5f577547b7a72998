"""Local accounts as the login method keeps them, from checked values (`auth.local.users`).

The accounts of `auth.local.existingSecret` (a mounted Secret file, paths.local_users_file) are not read
here: the hub's loader reads them as values and checks them with everything else
(values.validation.load's `accounts_file`), so there is one validator and the catalog is built once.
The file is read at hub start: restart the hub after changing the Secret.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str
    teams: tuple


def accounts_from_values(values: dict) -> dict:
    users = values["auth"]["local"]["users"]
    return {name: Account(name, u["passwordHash"], tuple(u["teams"])) for name, u in users.items()}
