"""bcrypt, the only password format teamhub accepts."""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt

MIN_LENGTH = 8  # for every password a person chooses (teamhub users, teamhub hash-password)


class PasswordError(ValueError):
    """A chosen password that teamhub refuses; the message is for the person."""


def read_new_password(prompt: str = "Password: ") -> str:
    """A new password: prompted twice without echo on a terminal, else one line of stdin; at least MIN_LENGTH."""
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != password:
            raise PasswordError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    return password


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPU cores this process may use: the container's CPU limit (cgroup v2 `cpu.max`, "quota period") when
    there is one, else the machine's count."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            return max(1, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return os.cpu_count() or 1


@functools.cache
def _checks() -> ThreadPoolExecutor:
    # A bcrypt check keeps a core busy for about 0.25 s. On the event loop's default executor (cores + 4
    # threads) a class signing in at once left the loop one share of CPU among many, so every page and API
    # answer of the hub waited; checks get the cores but one, the loop keeps one.
    return ThreadPoolExecutor(max_workers=max(1, cores() - 1), thread_name_prefix="password-check")


async def verify_password_off_loop(password: str, password_hash: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_checks(), verify_password, password, password_hash)
