"""Launch links (issue 17): one URL that takes a person through login to the launch page with a choice
preselected, optionally pulling a git repository with nbgitpuller and opening a file of it.

The link is `<public URL>/hub/launch?resource=..&accelerator=..&sessionMinutes=..&repo=..&branch=..&open=..&autostart=1`.
Its resource fields are an ordinary start request (resolution.check_request judges them, with the same
sentences); the pull fields (repo, branch, open) are judged here: a repository must start with an entry of
`launchLinks.allowedRepos`, `open` must stay inside the repository. Both the link page and the start itself
(the form's POST, the REST API) run `split_request`, so a forged form is refused like a forged link.

Pure functions of the values: no hub, no I/O. The hub handler lives in launchhandler.py, the CLI in link_cli.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from ..catalog.access import RequestRefused
from ..values import origins

PULL_FIELDS = ("repo", "branch", "open")
LINK_FIELDS = ("resource", "accelerator", "sessionMinutes", *PULL_FIELDS, "autostart")
DEFAULT_BRANCH = "main"
# A branch name git accepts and nbgitpuller passes on safely: no "..", no leading "-" (an option to git).
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}")
_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_TEXT_LIMIT = 500


@dataclass(frozen=True)
class Pull:
    """A checked repository to pull into the home folder (under `folder`) and the file to open in it."""

    repo: str
    branch: str
    folder: str
    open: str  # "" opens the folder

    def default_url(self) -> str:
        """The single-user server's default URL: nbgitpuller's page, which pulls and then opens the file."""
        target = f"{self.folder}/{self.open}" if self.open else self.folder
        query = urlencode({"repo": self.repo, "branch": self.branch, "targetpath": self.folder,
                           "urlpath": f"lab/tree/{target}"})
        return f"/git-pull?{query}"


def allowed_repos(values: dict) -> tuple:
    return tuple(values["launchLinks"]["allowedRepos"])  # filled values: the schema's default is []


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _TEXT_LIMIT or any(c.isspace() or ord(c) < 32 for c in value):
        raise RequestRefused(400, f"The {what} in this link is not valid text.")
    return value


def check_repo(repo, allowed: tuple) -> str:
    repo = _text(repo, "repository")
    parts = urlsplit(repo)
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc or parts.query or parts.fragment:
        raise RequestRefused(400, f"The repository {repo!r} must be an http(s) address without a user name, query or fragment.")
    for entry in allowed:
        # A prefix ends at a path boundary: "https://git.example.edu/course" must not admit ".../course-evil".
        if repo == entry or repo.startswith(entry if entry.endswith("/") else entry + "/"):
            return repo
    raise RequestRefused(403, f"The repository {repo} is not on this hub's list of allowed repositories "
                              "(launchLinks.allowedRepos); nothing was started. Ask your admin to allow it.")


def repo_folder(repo: str) -> str:
    """The folder the repository is pulled into: its last path segment without `.git`."""
    name = urlsplit(repo).path.rstrip("/").rpartition("/")[2]
    name = name[:-4] if name.endswith(".git") else name
    if not _FOLDER.fullmatch(name):
        raise RequestRefused(400, f"The repository {repo} does not end in a usable folder name.")
    return name


def check_open(path) -> str:
    if path in (None, ""):
        return ""
    path = _text(path, "path to open")
    segments = path.split("/")
    if path.startswith("/") or "\\" in path or any(s in ("..", ".") for s in segments):
        raise RequestRefused(400, f"The path {path!r} leaves the repository; a link may only open a file inside it.")
    return "/".join(s for s in segments if s)


def check_pull(fields: dict, allowed: tuple) -> Pull | None:
    """The pull part of a request, checked; None when the request names no repository."""
    repo = fields.get("repo")
    if repo in (None, ""):
        if fields.get("branch") or fields.get("open"):
            raise RequestRefused(400, "A link that names a branch or a file to open must also name its repository (repo).")
        return None
    repo = check_repo(repo, allowed)
    branch = fields.get("branch") or DEFAULT_BRANCH
    if not isinstance(branch, str) or not _BRANCH.fullmatch(branch) or ".." in branch:
        raise RequestRefused(400, f"The branch {str(branch)[:60]!r} is not a valid branch name.")
    return Pull(repo, branch, repo_folder(repo), check_open(fields.get("open")))


def split_request(user_options, allowed: tuple) -> tuple:
    """(the start request without the pull fields, the checked Pull or None). Checks the pull part first, so a
    repository off the allow-list is refused before anything else is looked at."""
    if not isinstance(user_options, dict):
        return user_options, None
    request = {k: v for k, v in user_options.items() if k not in PULL_FIELDS}
    return request, check_pull({k: user_options.get(k) for k in PULL_FIELDS}, allowed)


def link_query(fields: dict) -> str:
    """The link's query string: the fields given, in LINK_FIELDS order (stable links for the same choice)."""
    return urlencode([(k, str(fields[k])) for k in LINK_FIELDS if fields.get(k) not in (None, "", False)])


def public_url(values: dict) -> str | None:
    """The hub's public address: `launchLinks.publicUrl`, else `hub.subdomainHost` (where the hub signs people
    in when servers have their own origins), else the first Ingress host (https when TLS covers it)."""
    url = values["launchLinks"].get("publicUrl")  # no default: unset means the Ingress host
    if url:
        return url.rstrip("/")
    origin = origins.of_values(values)
    if origin is not None:
        return origin.url
    ingress = values.get("ingress") or {}
    hosts = ingress.get("hosts") or []
    if not ingress.get("enabled") or not hosts:
        return None
    tls_hosts = {h for t in ingress.get("tls") or [] for h in t.get("hosts") or []}
    return f"{'https' if hosts[0] in tls_hosts else 'http'}://{hosts[0]}"


def needs_choice(catalog, request: dict) -> bool:
    """Whether the person must still choose something on the page (autostart then shows it instead)."""
    resource = catalog.resources.get(request.get("resource") or "")
    return resource is None or bool(resource.accelerators and not request.get("accelerator"))
