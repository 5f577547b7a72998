"""The demo's published accounts must never reach a real hub (issue 25): their passwords are printed by
`teamhub demo` and written in README and config/demo/demo-accounts.txt, so anyone could log in with them.

The list below is the one place those hashes are known. Values that carry one are refused by
`teamhub validate`, the hub at start and the chart's pre-upgrade check (`teamhub check-config`), unless the
values run in demo mode (`teamhub demo`, `teamhub validate --demo`). The check compares hashes, not
passwords: bcrypt at the demo's cost takes ~0.25 s a try, too slow for every account of a class at every start.
tests/unit/test_demo_hashes.py proves every hash in config/demo/values.yaml is listed here.
"""

from __future__ import annotations

from .source import Problem

# account name in config/demo/values.yaml -> its bcrypt hash (password "<name>-demo-pass")
DEMO_HASHES = {
    "ada": "$2b$12$Xgnp62i4m6AkY2tuTo9bmuzSyf8FTrxbeRUIiQn9Lmoh/UsjXVrQe",
    "alice": "$2b$12$BNR6OFPh85xelPghUKTrVO1VYd2tppebHhVUIp.RNVuAMBZhO.362",
    "bob": "$2b$12$ajGVS.SgvHw42Bpr4f57VOx5i7yxVSVXV02bNiPeKKzVhHbYu3h6y",
    "carol": "$2b$12$XE0L3yjm6ar.Ws81HvG2ne6VTb993IFPLmoieWy5RU679I.rGSco6",
}
_KNOWN = {h: name for name, h in DEMO_HASHES.items()}


def problems(data) -> list[Problem]:
    """An error at each local account whose passwordHash is a demo account's."""
    local = data.get("auth", {}).get("local", {}) if isinstance(data, dict) and isinstance(data.get("auth"), dict) else {}
    users = local.get("users") if isinstance(local, dict) else None
    out = []
    for name, user in (users.items() if isinstance(users, dict) else ()):
        digest = user.get("passwordHash") if isinstance(user, dict) else None
        if isinstance(digest, str) and digest in _KNOWN:
            out.append(Problem("error", ("auth", "local", "users", name, "passwordHash"), (
                f"this is the published hash of the demo account '{_KNOWN[digest]}' (its password is in README): anyone "
                "could log in with it, so only `teamhub demo` accepts it; give this account its own hash from "
                "`teamhub hash-password`")))
    return out
