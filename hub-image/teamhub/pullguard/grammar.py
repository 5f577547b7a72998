"""The one grammar of launch-link fields (issue 23): repository, branch, file to open, server name.

Used on the hub (the link, the launch form, the REST API, `teamhub validate`) and inside the single-user
server (the pull guard, `teamhub.pullguard`), so it imports nothing but the standard library: the single-user
images carry this package without the rest of teamhub.

A check that reads text one way while git, a browser or nbgitpuller reads it another is a way around it. So
every field is reduced to a canonical form made of plain ASCII pieces before anything is compared, and what is
handed on is that canonical form (encoded for where it goes), never the text as it arrived:

- a repository URL is decoded once; its scheme, host and port must be plain (no user name, no look-alike
  characters), every path segment a plain name: no dot segments, no encoded separators (%2f, %5c), no
  backslashes, no second level of encoding (%252e), nothing outside ASCII;
- an allow-list entry parses the same way and matches a repository on whole segments with the same
  scheme, host and port: entry `https://git.example.edu/course` admits `.../course/lab.git`, never
  `.../course-evil/lab.git`, `http://...` or `...:8443/course/...`;
- `open` is a relative path of plain segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

TEXT_LIMIT = 500
# A plain name: ASCII letters, digits and . _ ~ + -, not starting with a dot or dash (no "..", no hidden
# file, never an option to git). Everything else, after one decoding, is refused.
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~+-]{0,254}")
_HOST = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}")
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # a named server: a safe slug, as JupyterHub 6 wants
DEFAULT_PORTS = {"http": 80, "https": 443}


class GrammarError(ValueError):
    """A field outside the grammar; the message is a sentence for the person (it quotes the field)."""


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > TEXT_LIMIT:
        raise GrammarError(f"The {what} is not valid text.")
    if not value.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise GrammarError(f"The {what} {value[:80]!r} holds spaces, control or non-ASCII characters.")
    if "\\" in value:
        raise GrammarError(f"The {what} {value[:80]!r} holds a backslash.")
    return value


@dataclass(frozen=True)
class Repo:
    """A repository URL in canonical form."""

    scheme: str
    host: str
    port: int
    segments: tuple

    def __str__(self) -> str:
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        # Plain segments need no percent-encoding: the canonical text is also the encoded one.
        return f"{self.scheme}://{self.host}{port}/" + "/".join(self.segments)

    def within(self, entry: Repo) -> bool:
        """On the allow-list entry `entry`: same origin, and entry's segments are a prefix of ours."""
        return ((self.scheme, self.host, self.port) == (entry.scheme, entry.host, entry.port)
                and self.segments[:len(entry.segments)] == entry.segments)

    @property
    def folder(self) -> str:
        """The folder it is pulled into: its last segment without `.git`."""
        name = self.segments[-1] if self.segments else ""
        name = name.removesuffix(".git")
        if not SEGMENT.fullmatch(name):
            raise GrammarError(f"The repository {self} does not end in a usable folder name.")
        return name


def parse_repo(value, what: str = "repository") -> Repo:
    text = _text(value, what)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise GrammarError(f"The {what} {text!r} must be an http(s) address.")
    if "@" in parts.netloc or "?" in text or "#" in text:
        raise GrammarError(f"The {what} {text!r} must be an address without a user name, query or fragment.")
    host, _, port = parts.netloc.lower().partition(":")
    if "%" in host or not _HOST.fullmatch(host):
        raise GrammarError(f"The {what} {text!r} names no plain host.")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise GrammarError(f"The {what} {text!r} has an invalid port.")
    path = parts.path
    if path.endswith("/"):
        path = path[:-1]  # "https://git.example.edu/course/" is the same place as ".../course"
    raw = path.split("/")[1:] if path else []
    try:
        segments = tuple(unquote(s, errors="strict") for s in raw)  # decoded once, and only once
    except UnicodeDecodeError:
        raise GrammarError(f"The {what} {text!r} has an encoded byte that is not text in its path.") from None
    for seg in segments:
        if not SEGMENT.fullmatch(seg):
            shown = "an empty segment" if not seg else repr(seg)
            raise GrammarError(f"The {what} {text!r} has {shown} in its path: only plain names separated by "
                               "'/' are allowed (no '.' or '..', encoded separators or look-alike characters).")
    return Repo(scheme, host, int(port) if port else DEFAULT_PORTS[scheme], segments)


def repo_on_list(value, allowed) -> Repo | None:
    """The canonical repository when it is under an entry of `allowed` (parsed Repos or their text), else
    None; GrammarError when it is not a plain repository URL at all."""
    repo = parse_repo(value)
    entries = [e if isinstance(e, Repo) else parse_repo(e, "allowed repository") for e in allowed]
    return repo if any(repo.within(e) for e in entries) else None


def parse_branch(value) -> str:
    text = _text(value, "branch")
    if (not _BRANCH.fullmatch(text) or ".." in text or "//" in text or text.endswith(("/", ".", ".lock"))
            or "/." in text):
        raise GrammarError(f"The branch {text[:60]!r} is not a valid branch name.")
    return text


def parse_open(value) -> str:
    """A file or folder inside the repository: a relative path of plain segments ("" opens the folder)."""
    if value in (None, ""):
        return ""
    text = _text(value, "path to open")
    segments = text.split("/")
    if text.startswith("/") or not all(SEGMENT.fullmatch(s) for s in segments):
        raise GrammarError(f"The path {text[:80]!r} leaves the repository or is not a relative path of plain names; "
                           "a link may only open a file inside it (no '..', '.', '%', leading '/' or look-alikes).")
    return text


def parse_server(value) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not SERVER_NAME.fullmatch(value):
        raise GrammarError("The server name is not a lowercase slug (letters, digits and '-', at most 40).")
    return value
