"""`teamhub users`: manage local accounts in a values file (auth.local.users) or in a Secret manifest
(the YAML of `auth.local.existingSecret`, under stringData/data[KEY]).

Edits keep the operator's comments, order and quoting (ruamel.yaml round trip). Only bcrypt hashes are
written; passwords are prompted without echo (or read from stdin when it is not a terminal). Generated
passwords (bulk import, --generate) are shown once on stdout or written to a file created with mode 0600.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import secrets
import stat
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from ..auth.passwords import PasswordError, hash_password, read_new_password
from ..values.schema import pattern

NAME = re.compile(pattern("localUserName"))  # the schema's rules, so the hub accepts what this writes
TEAM = re.compile(pattern("key"))


class UsersError(Exception):
    pass


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def generate_password() -> str:
    """16 characters from a 57-symbol alphabet without look-alikes: about 93 bits."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class AccountsFile:
    """A values file or a Secret manifest, loaded for editing."""

    def __init__(self, path: Path, secret_key: str = "users.yaml", create_secret: str | None = None):
        self.path, self.key = Path(path), secret_key
        self.yaml = _yaml()
        self.secret = False
        self.encoded = False
        if not self.path.exists():
            if not create_secret:
                raise UsersError(f"{self.path} does not exist (use --create-secret NAME to start a Secret manifest)")
            self.doc = CommentedMap([("apiVersion", "v1"), ("kind", "Secret"),
                                     ("metadata", CommentedMap([("name", create_secret)])), ("type", "Opaque"),
                                     ("stringData", CommentedMap([(secret_key, "")]))])
            self.secret, self.users = True, CommentedMap()
            return
        self.doc = self.yaml.load(self.path.read_text(encoding="utf-8")) or CommentedMap()
        if not isinstance(self.doc, dict):
            raise UsersError(f"{self.path}: not a YAML mapping")
        if self.doc.get("kind") == "Secret":
            self.secret = True
            string_data, data = self.doc.get("stringData") or {}, self.doc.get("data") or {}
            if self.key in string_data:
                text = str(string_data[self.key] or "")
            elif self.key in data:
                self.encoded, text = True, base64.b64decode(data[self.key]).decode("utf-8")
            else:
                text = ""
            self.users = self.yaml.load(text) if text.strip() else CommentedMap()
            if self.users is not None and set(self.users) == {"users"}:
                self.users = self.users["users"]
            self.users = self.users if self.users is not None else CommentedMap()
        else:
            auth = self.doc.setdefault("auth", CommentedMap())
            local = auth.setdefault("local", CommentedMap())
            if local.get("users") is None:
                local["users"] = CommentedMap()
            self.users = local["users"]

    def team_keys(self) -> set | None:
        """Teams defined in the same file (None: unknown, e.g. a Secret manifest)."""
        if self.secret:
            return None
        teams = (self.doc.get("catalog") or {}).get("teams")
        return set(teams) if isinstance(teams, dict) else None

    def save(self) -> None:
        if self.secret:
            buf = io.StringIO()
            self.yaml.dump(self.users, buf) if self.users else buf.write("{}\n")
            text = buf.getvalue()
            if self.encoded:
                self.doc["data"][self.key] = base64.b64encode(text.encode()).decode()
            else:
                self.doc.setdefault("stringData", CommentedMap())[self.key] = LiteralScalarString(text)
        buf = io.StringIO()
        self.yaml.dump(self.doc, buf)
        mode = stat.S_IMODE(self.path.stat().st_mode) if self.path.exists() else (0o600 if self.secret else 0o644)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(buf.getvalue())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def set_user(self, name: str, password_hash: str | None = None, teams=None) -> None:
        entry = self.users.get(name)
        if entry is None:
            entry = CommentedMap()
            self.users[name] = entry
        if password_hash is not None:
            entry["passwordHash"] = DoubleQuotedScalarString(password_hash)
        if teams is not None:
            seq = CommentedSeq(teams)
            seq.fa.set_flow_style()
            entry["teams"] = seq
        elif "teams" not in entry:
            seq = CommentedSeq()
            seq.fa.set_flow_style()
            entry["teams"] = seq


# --- helpers ----------------------------------------------------------------------------------

def _check_name(name: str) -> str:
    if name.startswith("local:"):
        name = name[6:]
    if not NAME.match(name):
        raise UsersError(f"'{name}' is not a valid local user name (lowercase letters, digits and . _ @ -, at most 64)")
    return name


def _check_teams(teams, known) -> list:
    out = []
    for t in teams:
        for part in re.split(r"[;,\s]+", t.strip()):
            if not part:
                continue
            if not TEAM.match(part):
                raise UsersError(f"'{part}' is not a valid team key")
            if known is not None and part not in known:
                raise UsersError(f"unknown team '{part}'; define it under catalog.teams")
            if part not in out:
                out.append(part)
    return out


def read_password(prompt_name: str) -> str:
    try:
        return read_new_password(f"Password for {prompt_name}: ")
    except PasswordError as exc:
        raise UsersError(str(exc)) from None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


# --- commands ---------------------------------------------------------------------------------

def _open(args) -> AccountsFile:
    return AccountsFile(args.file, args.secret_key, getattr(args, "create_secret", None))


def cmd_list(args) -> int:
    acc = _open(args)
    for name, entry in acc.users.items():
        print(f"local:{name}\tteams: {', '.join((entry or {}).get('teams') or []) or '-'}")
    return 0


def _password_for(args, name: str) -> tuple[str, bool]:
    if args.generate:
        return generate_password(), True
    return read_password(f"local:{name}"), False


def _existing(args):
    """The accounts file and the name of an account that must already be in it."""
    acc = _open(args)
    name = _check_name(args.name)
    if name not in acc.users:
        raise UsersError(f"there is no local:{name} in {args.file}")
    return acc, name


def _store_password(acc, args, name: str, done: str, teams=None) -> None:
    """Prompt for (or generate) the password, save only its hash; a generated one is shown once."""
    password, generated = _password_for(args, name)
    acc.set_user(name, hash_password(password, args.rounds), teams)
    acc.save()
    if generated:
        print(f"local:{name}\t{password}")
    print(done, file=sys.stderr)


def cmd_add(args) -> int:
    acc = _open(args)
    name = _check_name(args.name)
    if name in acc.users:
        raise UsersError(f"local:{name} exists already (use `teamhub users passwd` or `set-teams`)")
    _store_password(acc, args, name, f"added local:{name} to {args.file}", _check_teams(args.team, acc.team_keys()))
    return 0


def cmd_remove(args) -> int:
    acc, name = _existing(args)
    del acc.users[name]
    acc.save()
    print(f"removed local:{name} from {args.file}", file=sys.stderr)
    return 0


def cmd_passwd(args) -> int:
    acc, name = _existing(args)
    _store_password(acc, args, name, f"new password for local:{name} in {args.file}")
    return 0


def cmd_set_teams(args) -> int:
    acc, name = _existing(args)
    acc.set_user(name, teams=_check_teams(args.teams, acc.team_keys()))
    acc.save()
    return 0


def cmd_import(args) -> int:
    acc = _open(args)
    known = acc.team_keys()
    with open(args.csv, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise UsersError(f"{args.csv}: no rows (the first line names the columns: username[,teams])")
    if "username" not in rows[0]:
        raise UsersError(f"{args.csv}: needs a 'username' column (and optionally 'teams', separated by ';')")
    todo, skipped, seen = [], [], set()
    for i, row in enumerate(rows, start=2):
        try:
            name = _check_name((row.get("username") or "").strip().lower())
            teams = _check_teams([row.get("teams") or ""] + list(args.team), known)
        except UsersError as exc:
            raise UsersError(f"{args.csv}:{i}: {exc}") from None
        if name in seen:
            raise UsersError(f"{args.csv}:{i}: local:{name} appears twice")
        seen.add(name)
        if name in acc.users and not args.reset_existing:
            skipped.append(name)
            continue
        todo.append((name, teams))
    if args.passwords_out and Path(args.passwords_out).exists():
        raise UsersError(f"{args.passwords_out} exists already; choose a new file")
    passwords = {name: generate_password() for name, _ in todo}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        hashes = dict(zip(passwords, pool.map(lambda p: hash_password(p, args.rounds), passwords.values()), strict=True))
    for name, teams in todo:
        acc.set_user(name, hashes[name], teams)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "password"])
    for name, _ in todo:
        writer.writerow([f"local:{name}", passwords[name]])
    if args.passwords_out:
        _write_private(Path(args.passwords_out), out.getvalue())
    acc.save()
    if not args.passwords_out:
        sys.stdout.write(out.getvalue())
    msg = f"imported {len(todo)} account(s) into {args.file}"
    if skipped:
        msg += f"; skipped {len(skipped)} existing (use --reset-existing): {', '.join(skipped)}"
    if args.passwords_out:
        msg += f"; passwords in {args.passwords_out} (mode 0600): hand them out, then delete the file"
    print(msg, file=sys.stderr)
    return 0


def _run(func):
    def wrapped(args) -> int:
        try:
            return func(args)
        except UsersError as exc:
            print(f"teamhub users: {exc}", file=sys.stderr)
            return 2
    return wrapped


def register(sub) -> None:
    """Add `teamhub users ...` to the main parser's subcommands."""
    users = sub.add_parser("users", help="manage local accounts in a values file or a Secret manifest")
    usub = users.add_subparsers(dest="users_command", required=True)

    def add(name, func, help_text):
        p = usub.add_parser(name, help=help_text)
        p.add_argument("file", type=Path, metavar="FILE", help="values file, or a Secret manifest (kind: Secret)")
        p.add_argument("--secret-key", default="users.yaml", help="key inside the Secret (default users.yaml)")
        p.set_defaults(func=_run(func))
        return p

    add("list", cmd_list, "list the local accounts")
    for name, func, text in (("add", cmd_add, "add an account (password prompted, not echoed)"),
                             ("passwd", cmd_passwd, "set or reset an account's password")):
        p = add(name, func, text)
        p.add_argument("name")
        p.add_argument("--generate", action="store_true", help="generate a strong password and print it once")
        p.add_argument("--rounds", type=int, default=12, help="bcrypt cost (default 12)")
        if name == "add":
            p.add_argument("--team", action="append", default=[], help="a team key (repeatable)")
            p.add_argument("--create-secret", metavar="NAME", help="start a new Secret manifest named NAME at FILE")
    p = add("remove", cmd_remove, "remove an account")
    p.add_argument("name")
    p = add("set-teams", cmd_set_teams, "replace an account's teams (none: no teams)")
    p.add_argument("name")
    p.add_argument("teams", nargs="*")
    p = add("import", cmd_import, "bulk-import a CSV (username[,teams]) with generated passwords")
    p.add_argument("csv", type=Path)
    p.add_argument("--team", action="append", default=[], help="a team every imported account joins (repeatable)")
    p.add_argument("--passwords-out", metavar="PATH", help="write the generated passwords here (mode 0600) instead of stdout")
    p.add_argument("--reset-existing", action="store_true", help="give existing accounts in the CSV new passwords")
    p.add_argument("--rounds", type=int, default=12, help="bcrypt cost (default 12)")
    p.add_argument("--create-secret", metavar="NAME", help="start a new Secret manifest named NAME at FILE")
