"""Who is this person, what may they launch, and may they start this request?

Pure functions of the catalog and a person: no I/O, no hub. The launch page, the spawner's checks at
spawn time, `teamhub catalog` and the tests all ask the same questions here, so what a person is
shown and what the server accepts can never drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..values.validation import EVERYONE
from . import queue
from .model import Catalog
from .placement import Launch, build_launch

METHODS = ("local", "github", "oidc", "dummy")
REQUEST_FIELDS = ("resource", "accelerator", "sessionMinutes")


@dataclass(frozen=True)
class Person:
    username: str  # as the hub shows it: "local:alice", "github:octo"
    groups: frozenset = frozenset()  # from the provider: GitHub "org:team" slugs, OIDC groups
    admin: bool = False

    @property
    def method(self) -> str | None:
        prefix, sep, _ = self.username.partition(":")
        return prefix if sep and prefix in METHODS else None

    @property
    def login_name(self) -> str:
        return self.username.partition(":")[2] if self.method else self.username


@dataclass(frozen=True)
class Access:
    teams: tuple  # team keys, in catalog order
    resources: tuple  # Resource objects, in catalog order
    charged_team: Mapping  # resource key -> the team whose quota a server of it counts against

    def allows(self, resource_key: str) -> bool:
        return resource_key in self.charged_team


def teams_of(catalog: Catalog, person: Person) -> tuple:
    keys = set(catalog.by_user.get(person.username, ()))
    method = person.method
    if method == "local":
        keys.update(t for t in catalog.local_users.get(person.login_name, ()) if t in catalog.teams)
    elif method == "github":
        for group in person.groups:
            keys.update(catalog.by_github.get(group.lower(), ()))
    elif method == "oidc":
        for group in person.groups:
            keys.update(catalog.by_oidc.get(group, ()))
    if EVERYONE in catalog.teams:
        keys.add(EVERYONE)
    return tuple(sorted(keys, key=catalog.team_order.__getitem__))


def is_admin(catalog: Catalog, person: Person) -> bool:
    return person.admin or person.username in catalog.admins


def resolve(catalog: Catalog, person: Person) -> Access:
    """The person's teams and the resources those teams (or being an admin) allow."""
    return access_of(catalog, teams_of(catalog, person), admin=is_admin(catalog, person))


def access_of(catalog: Catalog, teams: tuple, admin: bool = False) -> Access:
    """What members of these teams (team keys, catalog order) may launch; admins may launch everything."""
    charged: dict = {}
    # A resource counts against the first specific team that grants it; `everyone` comes last so a
    # course's quota is not bypassed by the same resource also being open to everyone.
    for key in sorted(teams, key=lambda t: t == EVERYONE):
        for res in catalog.teams[key].resources:
            charged.setdefault(res, key)
    if admin:
        for res in catalog.resources:
            charged.setdefault(res, None)
    resources = tuple(sorted((catalog.resources[k] for k in charged), key=lambda r: catalog.resource_order[r.key]))
    return Access(teams, resources, charged)


class RequestRefused(Exception):
    """A start request that must not go ahead; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


_MINUTES = re.compile(r"[0-9]{1,5}")  # ASCII digits only: str.isdigit() also takes "٦٠" and "²"


def _shown(value) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of 4,300+ digits cannot be turned into text
        return "a number of more than 5 digits"
    return text if len(text) <= 40 else text[:40] + "…"


def _minutes(value, default: int, limit: int) -> int:
    if value is None or value == "":
        return min(default, limit)
    if isinstance(value, str) and _MINUTES.fullmatch(value):
        minutes = int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 99999:
        minutes = value
    else:
        # One sentence for every malformed length, the value shown cut short.
        raise RequestRefused(400, f"The session length must be a whole number of minutes, not {_shown(value)}.")
    if minutes < 1:
        raise RequestRefused(400, "The session length must be at least 1 minute.")
    if minutes > limit:
        raise RequestRefused(400, f"This environment allows sessions of at most {limit} minutes; you asked for {minutes}.")
    return minutes


def check_request(catalog: Catalog, person: Person, request, access: Access | None = None) -> Launch:
    """May this person start this request? A Launch when yes; RequestRefused (400/403) with a reason
    a person understands when not."""
    if not isinstance(request, Mapping):
        raise RequestRefused(400, "The start request must be a set of options: resource, accelerator, sessionMinutes.")
    unknown = sorted(str(k) for k in request if k not in REQUEST_FIELDS)
    if unknown:
        raise RequestRefused(400, f"Unknown option(s) {', '.join(unknown)}; a start request takes resource, accelerator and sessionMinutes.")
    key = request.get("resource")
    if not key:
        raise RequestRefused(400, "Choose an environment to start.")
    if not isinstance(key, str):
        raise RequestRefused(400, "The environment must be given by its name.")
    resource = catalog.resources.get(key)
    if resource is None:
        raise RequestRefused(400, f"There is no environment called '{key}'.")
    access = access or resolve(catalog, person)
    if not access.allows(key):
        raise RequestRefused(403, f"Your teams do not include the environment '{resource.display_name}'.")

    acc_key = request.get("accelerator") or None
    accelerator = None
    if resource.accelerators:
        if acc_key is None:
            choices = ", ".join(catalog.accelerators[a].display_name for a in resource.accelerators)
            raise RequestRefused(400, f"Choose an accelerator for '{resource.display_name}': {choices}.")
        if not isinstance(acc_key, str) or acc_key not in resource.accelerators:
            raise RequestRefused(400, f"'{resource.display_name}' does not offer the accelerator {acc_key!r}.")
        accelerator = catalog.accelerators[acc_key]
    elif acc_key is not None:
        raise RequestRefused(400, f"'{resource.display_name}' does not take an accelerator.")

    minutes = _minutes(request.get("sessionMinutes"), catalog.sessions.default_minutes, catalog.resource_limit_minutes(resource))
    launch = build_launch(catalog, resource, accelerator, minutes, access)
    never = queue.never_admitted(catalog, launch)  # before the pod exists: such a pod would wait forever
    if never:
        raise RequestRefused(403, never)
    return launch


__all__ = ["Access", "Person", "RequestRefused", "access_of", "check_request", "is_admin", "resolve", "teams_of"]
