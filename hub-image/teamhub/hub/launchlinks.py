"""Launch links (issue 17): one URL that takes a person through login to the launch page with a choice
preselected, optionally pulling a git repository with nbgitpuller and opening a file of it.

The link is `<public URL>/hub/launch?resource=..&accelerator=..&sessionMinutes=..&repo=..&branch=..&open=..&autostart=1`.
Its resource fields are an ordinary start request (resolution.check_request judges them, with the same
sentences); the pull fields (repo, branch, open) are judged here by the one grammar of link fields
(`teamhub/pullguard/grammar.py`, shared with the pull guard inside the single-user server): a repository must
lie under an entry of `launchLinks.allowedRepos` on whole path segments, `open` is a relative path of plain names. Both the link page and the start itself
(the form's POST, the REST API) run `split_request`, so a forged form is refused like a forged link.

Pure functions of the values: no hub, no I/O. The hub handler lives in launchhandler.py, the CLI in link_cli.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from .. import pullguard
from ..catalog.access import RequestRefused
from ..pullguard import grammar
from ..values import origins

PULL_FIELDS = ("repo", "branch", "open")
LINK_FIELDS = ("resource", "accelerator", "sessionMinutes", *PULL_FIELDS, "autostart")
DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class Pull:
    """A checked repository (canonical, pullguard/grammar.py) to pull into the home folder (under `folder`)
    and the file to open in it."""

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
    """The allow-list, parsed (`teamhub validate` refused entries outside the grammar)."""
    return tuple(grammar.parse_repo(e, "allowed repository") for e in values["launchLinks"]["allowedRepos"])


def pullguard_env(values: dict) -> dict:
    """The user server's environment for its pull guard (teamhub.pullguard): the allow-list, canonical."""
    return {pullguard.ENV: json.dumps([str(r) for r in allowed_repos(values)])}


def _refused(exc: grammar.GrammarError) -> RequestRefused:
    return RequestRefused(400, str(exc))


def check_repo(repo, allowed: tuple) -> str:
    """The repository's canonical URL when it is under an allowed entry (on whole path segments)."""
    try:
        found = grammar.repo_on_list(repo, allowed)
    except grammar.GrammarError as exc:
        raise _refused(exc) from None
    if found is None:
        raise RequestRefused(403, f"The repository {repo} is not on this hub's list of allowed repositories "
                                  "(launchLinks.allowedRepos); nothing was started. Ask your admin to allow it.")
    return str(found)


def check_pull(fields: dict, allowed: tuple) -> Pull | None:
    """The pull part of a request, checked; None when the request names no repository."""
    repo = fields.get("repo")
    if repo in (None, ""):
        if fields.get("branch") or fields.get("open"):
            raise RequestRefused(400, "A link that names a branch or a file to open must also name its repository (repo).")
        return None
    repo = check_repo(repo, allowed)
    try:
        return Pull(repo, grammar.parse_branch(fields.get("branch") or DEFAULT_BRANCH),
                    grammar.parse_repo(repo).folder, grammar.parse_open(fields.get("open")))
    except grammar.GrammarError as exc:
        raise _refused(exc) from None


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
    """The hub's public address, without a trailing slash and with hub.baseUrl's path: `launchLinks.publicUrl`
    (its path is kept when it already ends with the base URL, else the base URL is added), else
    `hub.subdomainHost` (where the hub signs people in when servers have their own origins), else the first
    Ingress host (https when TLS covers it)."""
    site = _site_url(values)
    if site is None:
        return None
    base = ((values.get("hub") or {}).get("baseUrl") or "/").rstrip("/")
    return site if not base or site.endswith(base) else site + base


def _site_url(values: dict) -> str | None:
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
