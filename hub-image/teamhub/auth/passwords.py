"""bcrypt, the only password format teamhub accepts."""

from __future__ import annotations

import getpass
import sys

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
