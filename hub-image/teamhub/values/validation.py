"""Every check on values, in one place: the schema (structure) and the rules a schema cannot express.

`teamhub validate`, the hub at start and the tests all call `check()`; helm applies the same schema
through the generated chart/values.schema.json. Each problem names the file, line and YAML path, and
all problems are reported in one run.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path

from ..pullguard import grammar
from . import demohashes, devices, gpumetrics, origins, scheduling, secrets
from .quantities import cpu_cores, memory_bytes, memory_hint
from .schema import default_of, deref, inlined_schema, schema, validator, with_defaults
from .source import Problem, Source, drop_locations, load_files, merge, nest, paused_gc, read_file

__all__ = ["EVERYONE", "Checked", "InvalidValues", "check", "inlined_schema", "load", "schema", "with_defaults"]

# The team every person belongs to (catalog.teams.everyone); the catalog (catalog/model.py) reads it from here.
EVERYONE = "everyone"


class InvalidValues(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Checked:
    """The outcome of checking values: problems, and when there are no errors, the values with defaults
    (catalog/loader.py adds the catalog built from them)."""

    source: Source
    problems: list
    values: dict | None = None  # with defaults applied

    @property
    def errors(self) -> list:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def check(source: Source, demo: bool = False) -> Checked:
    """`demo`: the values run as `teamhub demo` (its published demo accounts allowed; values/demohashes.py)."""
    with paused_gc():
        return _check(source, demo)


def _check(source: Source, demo: bool) -> Checked:
    problems = list(source.problems)
    if not source.unparsed:  # checking half a document would only add confusing follow-on errors
        problems += schema_problems(source.data)
        problems += semantic_problems(source.data)
        if not demo:
            problems += demohashes.problems(source.data)
    for p in problems:
        if p.location is None:
            p.location = source.locate(p.path)
    problems = _dedupe(problems)
    if problems and isinstance(source.data, dict):
        hidden = secrets.values_under_secrets(source.data)
        for p in problems:
            p.message = secrets.mask(p.message, hidden)
    problems.sort(key=lambda p: (p.level != "error", p.location.file if p.location else "", p.location.line if p.location else 0))
    result = Checked(source, problems)
    if result.ok:
        result.values = with_defaults(source.data)
    return result


def load(paths, accounts_file: str | Path | None = None, demo: bool = False) -> Checked:
    """Read, merge (like helm -f) and check values files. Unreadable files raise YamlFileError.

    `accounts_file`: where the hub finds the Secret of `auth.local.existingSecret` (paths.local_users_file).
    With it, and when the values name such a Secret, the file's accounts are read as values under
    `auth.local.users` (an account in the file replaces a same-named one in values) and checked with
    everything else, so the catalog (catalog/loader.py) is built once, from all accounts. `demo`: see check()."""
    source = load_files(list(paths))
    if accounts_file is not None:
        source = with_secret_accounts(source, Path(accounts_file))
    return check(source, demo)


def with_secret_accounts(source: Source, accounts_file: Path) -> Source:
    local = _map(_map(_map(source.data).get("auth")).get("local"))
    if local.get("enabled") is not True or not local.get("existingSecret"):
        return source
    accounts = read_file(accounts_file)
    if set(accounts.data) == {"users"}:  # the file may also hold `users:` like the values section
        accounts = Source(_map(accounts.data["users"]), {p[1:]: loc for p, loc in accounts.locations.items() if p[:1] == ("users",)},
                          accounts.problems, accounts.files, accounts.unparsed)
    users = local.get("users")
    if isinstance(users, dict):
        for name in accounts.data:  # the Secret's account wins whole, not merged key by key
            if users.pop(name, None) is not None:
                drop_locations(source.locations, ("auth", "local", "users", name))
    return merge([source, nest(accounts, ("auth", "local", "users"))])


def _dedupe(problems):
    seen, out = set(), []
    for p in problems:
        key = (p.level, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --- structure --------------------------------------------------------------------------------

_TYPE_WORDS = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "empty",
}


def _kind(value) -> str:
    """The operator's value described in the same words as the expected type."""
    for json_type, python_type in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                                   ("array", list), ("object", dict)):
        if isinstance(value, python_type):
            return _TYPE_WORDS[json_type]
    return "empty" if value is None else type(value).__name__


def _suggest(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def schema_problems(data) -> list[Problem]:
    problems = []
    for err in validator().iter_errors(data):
        problems.extend(_explain(err))
    return problems


def _explain(err) -> list[Problem]:
    path = tuple(err.absolute_path)
    node = deref(err.schema) if isinstance(err.schema, dict) else {}
    v = err.validator
    if node.get("errorMessage"):  # a rule stated with if/then/anyOf says in its own words what is wrong
        missing = err.message.split("'")[1] if v == "required" and "'" in err.message else ""
        message = " ".join(node["errorMessage"].split())
        return [Problem("error", path, message.format(missing=missing, value=err.instance))]
    if "propertyNames" in err.absolute_schema_path:
        return [Problem("error", path + (err.instance,), f"'{err.instance}' is not a valid {node.get('title', 'key')}{_describe(node)}")]
    if v == "additionalProperties":
        allowed = list(node.get("properties", {}))
        out = []
        for key in sorted(set(err.instance) - set(allowed)):
            hint = _suggest(key, allowed)
            if key in ("password", "plainPassword") and "passwordHash" in allowed:
                hint = "; plaintext passwords are refused: run `teamhub hash-password` and put its output in passwordHash"
            out.append(Problem("error", path + (key,), f"unknown key '{key}'{hint}"))
        return out
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [Problem("error", path, f"missing required key '{missing}'")]
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in want)
        hint = " (put it in quotes)" if "string" in want and isinstance(err.instance, (int, float)) else ""
        return [Problem("error", path, f"must be {words}, not {_kind(err.instance)}{hint}")]
    if v in ("pattern", "oneOf", "anyOf"):
        title = node.get("title") or "value"
        return [Problem("error", path, f"{err.instance!r} is not a valid {title}{_pattern_hint(title, err.instance, node)}")]
    if v == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        return [Problem("error", path, f"{err.instance!r} is not one of: {choices}{_suggest(err.instance, err.validator_value)}")]
    if v == "minimum":
        return [Problem("error", path, f"must be at least {err.validator_value}, not {err.instance!r}")]
    if v == "exclusiveMinimum":
        return [Problem("error", path, f"must be more than {err.validator_value}, not {err.instance!r}")]
    if v == "uniqueItems":
        return [Problem("error", path, "lists the same entry more than once")]
    if v == "minItems":
        return [Problem("error", path, f"must list at least {err.validator_value} entr{'y' if err.validator_value == 1 else 'ies'}")]
    if v == "minLength":
        return [Problem("error", path, "must not be empty")]
    return [Problem("error", path, err.message)]


def _describe(node) -> str:
    return f": {node['description'].rstrip('.')}" if node.get("description") else ""


def _pattern_hint(title: str, value, node) -> str:
    if title == "memory quantity":
        hint = memory_hint(value)
        return f"; {hint}" if hint else _describe(node)
    if title == "bcrypt hash":
        return "; plaintext passwords are refused: run `teamhub hash-password` and paste its output here"
    if title == "subdomain host":
        return "; write the hub's address without a path, e.g. https://hub.example.org or http://hub.localhost:8000"
    if title == "hub username" and isinstance(value, str) and ":" not in value:
        return f"; add the login method, e.g. 'local:{value}' or 'github:{value}'"
    if title == "hub username" and isinstance(value, str) and value != value.lower():
        return f"; the hub lowercases every login name, so this never matches anyone (did you mean '{value.lower()}'?)"
    return _describe(node)


# --- rules the schema cannot express -------------------------------------------------------------

def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def semantic_problems(data) -> list[Problem]:
    """Cross-references, arithmetic and warnings: only what JSON Schema cannot state (every other rule is
    in the schema, so helm refuses it too). Written to survive any structure: schema errors are reported
    separately, so a part that is malformed here is simply skipped."""
    data = _map(data)
    auth, cat, sessions = _map(data.get("auth")), _map(data.get("catalog")), _map(data.get("sessions"))
    images, accs, vols = _map(cat.get("images")), _map(cat.get("accelerators")), _map(cat.get("volumes"))
    resources, teams = _map(cat.get("resources")), _map(cat.get("teams"))
    out: list[Problem] = []

    def err(path, msg):
        out.append(Problem("error", tuple(path), msg))

    def warn(path, msg):
        out.append(Problem("warning", tuple(path), msg))

    def ref(path, key, table, what, where):
        if isinstance(key, str) and key not in table:
            err(path, f"unknown {what} '{key}'{_suggest(key, table)}; define it under {where}")

    max_minutes = sessions.get("maxMinutes", default_of("sessions.maxMinutes"))
    default_minutes = sessions.get("defaultMinutes", default_of("sessions.defaultMinutes"))
    if _is_int(max_minutes) and _is_int(default_minutes) and default_minutes > max_minutes:
        err(("sessions", "defaultMinutes"), f"{default_minutes} is longer than sessions.maxMinutes ({max_minutes})")

    for key, res in resources.items():
        res = _map(res)
        base = ("catalog", "resources", key)
        ref(base + ("image",), res.get("image"), images, "image", "catalog.images")
        for what, parse in (("cpu", cpu_cores), ("memory", memory_bytes)):
            q = _map(res.get(what))
            for side in ("request", "limit"):
                if isinstance(q.get(side), float) and not math.isfinite(q[side]):  # YAML's .nan/.inf pass the schema's number
                    err(base + (what, side), f"{q[side]} is not a quantity; write a number such as 2 or 500m")
            req, lim = parse(q.get("request")), parse(q.get("limit"))
            if req is not None and lim is not None and req > lim:
                err(base + (what, "request"), f"request {q.get('request')} is more than the limit {q.get('limit')}")
        acc_list = _list(res.get("accelerators"))
        for i, acc in enumerate(acc_list):
            ref(base + ("accelerators", i), acc, accs, "accelerator", "catalog.accelerators")
        for acc, override in _map(res.get("acceleratorOverrides")).items():
            opath = base + ("acceleratorOverrides", acc)
            if acc not in acc_list:
                err(opath, f"overrides accelerator '{acc}', which this resource does not offer{_suggest(acc, acc_list)}")
            ref(opath + ("image",), _map(override).get("image"), images, "image", "catalog.images")
        for i, vol in enumerate(_list(res.get("volumes"))):
            ref(base + ("volumes", i), vol, vols, "volume", "catalog.volumes")
        limit = res.get("maxSessionMinutes")
        if _is_int(limit) and _is_int(max_minutes) and limit > max_minutes:
            err(base + ("maxSessionMinutes",), f"{limit} is longer than sessions.maxMinutes ({max_minutes})")

    local = _map(auth.get("local"))
    local_users = _map(local.get("users"))
    for name, user in local_users.items():
        for i, team in enumerate(_list(_map(user).get("teams"))):
            ref(("auth", "local", "users", name, "teams", i), team, teams, "team", "catalog.teams")

    reachable: set = set()
    for key, team in teams.items():
        team = _map(team)
        base = ("catalog", "teams", key)
        for i, res in enumerate(_list(team.get("resources"))):
            ref(base + ("resources", i), res, resources, "resource", "catalog.resources")
            if isinstance(res, str):
                reachable.add(res)
        for i, vol in enumerate(_list(team.get("volumes"))):
            ref(base + ("volumes", i), vol, vols, "volume", "catalog.volumes")
        for i, user in enumerate(_list(team.get("users"))):
            if isinstance(user, str) and user.startswith("local:") and user[6:] not in local_users and "existingSecret" not in local:
                warn(base + ("users", i), f"'{user}' is not a local account in auth.local.users{_suggest(user[6:], local_users)}")
        members = any(_list(team.get(k)) for k in ("users", "githubTeams", "oidcGroups"))
        members = members or any(key in _list(_map(u).get("teams")) for u in local_users.values())
        if key != EVERYONE and not members:
            warn(base, "nobody can belong to this team: it has no users, githubTeams or oidcGroups, and no local account lists it")
    for key in resources:
        if key not in reachable:
            warn(("catalog", "resources", key), "no team lists this resource, so only admins can launch it")

    for i, admin in enumerate(_list(auth.get("admins"))):
        if isinstance(admin, str) and admin.startswith("local:") and admin[6:] not in local_users and "existingSecret" not in local:
            warn(("auth", "admins", i), f"'{admin}' is not a local account in auth.local.users{_suggest(admin[6:], local_users)}")

    for i, cidr in enumerate(_list(local.get("trustedProxies"))):
        # The schema checks the shape; whether the numbers form an address range is arithmetic.
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError) as exc:
            err(("auth", "local", "trustedProxies", i), f"{cidr!r} is not an address range: {exc}")

    for i, entry in enumerate(_list(_map(data.get("launchLinks")).get("allowedRepos"))):
        try:  # the link's own grammar: an entry it cannot parse would admit nothing, or too much
            grammar.parse_repo(entry, "allowed repository")
        except grammar.GrammarError as exc:
            err(("launchLinks", "allowedRepos", i), str(exc))

    out += digest_problems(data)
    out += origins.problems(data)  # hub.subdomainHost and the Ingress serving it
    out += gpumetrics.problems(data)  # gpuMetrics and the catalog's GPU idle rules
    out += queue_problems(data)
    out += devices.problems(data)  # accelerators by Dynamic Resource Allocation: CEL, class references, the queue
    out += scheduling.problems(data)  # user placeholders name catalog placements
    gh = _map(auth.get("github"))
    if gh.get("enabled") is True and not _list(gh.get("allowedOrganizations")):
        warn(("auth", "github", "allowedOrganizations"), "empty: every GitHub account may log in (each gets the team everyone)")
    if _map(auth.get("dummy")).get("enabled") is True:
        warn(("auth", "dummy", "enabled"), "the dummy login accepts any password: development only, never on a real cluster")
    return out


def _pinnable_images(data: dict):
    """(path, image) of every image the values name: the catalog's, prePuller.extraImages and the chart's own."""
    for key, img in _map(_map(data.get("catalog")).get("images")).items():
        yield ("catalog", "images", key), _map(img)
    pre = _map(data.get("prePuller"))
    for key, img in _map(pre.get("extraImages")).items():
        yield ("prePuller", "extraImages", key), _map(img)
    for path in (("hub", "image"), ("proxy", "image"), ("prePuller", "pause"), ("test", "image")):
        img = _map(_map(data.get(path[0])).get(path[1]))
        if img.get("name"):  # only what the values name: a hub-only file has none, an empty test image is the hub's
            yield path, img


def digest_problems(data: dict) -> list[Problem]:
    """Tags move, digests do not. catalog.requireDigests unset: a warning per image without a digest; true:
    an error; false: silence (demos, labs that trust their tags)."""
    require = _map(data.get("catalog")).get("requireDigests")
    if require is False:
        return []
    level = "error" if require is True else "warning"
    hint = "" if require is True else " (catalog.requireDigests: false silences this, true makes it an error)"
    return [Problem(level, path, f"no digest: the image behind a tag can change; add digest: sha256:...{hint}")
            for path, img in _pinnable_images(data) if not img.get("digest")]


def queue_problems(data: dict) -> list[Problem]:
    """The GPU queue (issue 26): team shares that name real accelerators and fit the pool, and with the queue
    on, a catalog Kueue can place: every kind has a pool and a node selector that tells it apart, and every GPU
    launch fits some team. Kueue would otherwise hold such a request in line forever (or, under StrictFIFO,
    hold up everyone behind it)."""
    cat = _map(data.get("catalog"))
    accs, resources, teams = _map(cat.get("accelerators")), _map(cat.get("resources")), _map(cat.get("teams"))
    on = _map(data.get("queue")).get("enabled") is True
    out: list[Problem] = []

    def err(path, msg):
        out.append(Problem("error", tuple(path), msg))

    def pool(kind):
        value = _map(accs.get(kind)).get("capacity")
        return value if _is_int(value) else None

    most: dict = {}  # (team, kind) -> devices the team may hold at once
    given: dict = {}  # kind -> guaranteed devices summed over teams
    for team, raw in teams.items():
        for kind, share in _map(_map(_map(raw).get("queue")).get("accelerators")).items():
            path = ("catalog", "teams", team, "queue", "accelerators", kind)
            if kind not in accs:
                err(path, f"unknown accelerator '{kind}'{_suggest(kind, accs)}; define it under catalog.accelerators")
                continue
            share = _map(share)
            guaranteed = share.get("guaranteed", 0) if _is_int(share.get("guaranteed", 0)) else 0
            cap = share.get("max") if _is_int(share.get("max")) else pool(kind)
            given[kind] = given.get(kind, 0) + guaranteed
            if cap is not None:
                most[team, kind] = cap
            if cap is not None and guaranteed > cap:
                err(path + ("guaranteed",), f"{guaranteed} is more than this team's max ({cap})")
            if _is_int(share.get("max")) and pool(kind) is not None and share["max"] > pool(kind):
                err(path + ("max",), f"{share['max']} is more than the pool: catalog.accelerators.{kind}.capacity is {pool(kind)}")
    for kind, total in given.items():
        if pool(kind) is not None and total > pool(kind):
            err(("catalog", "accelerators", kind, "capacity"),
                f"the teams are guaranteed {total} devices of this kind (queue.accelerators.{kind}.guaranteed), more than the pool of {pool(kind)}")
    if not on:
        return out

    for kind, acc in accs.items():
        acc = _map(acc)
        if pool(kind) is None:
            err(("catalog", "accelerators", kind), "queue.enabled needs capacity here: how many devices of this kind the cluster has")
        if not _map(acc.get("nodeSelector")):
            err(("catalog", "accelerators", kind), "queue.enabled needs a nodeSelector here: Kueue tells the kinds apart by their node labels")
    kinds = sorted(accs)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            sa, sb = _map(_map(accs[a]).get("nodeSelector")), _map(_map(accs[b]).get("nodeSelector"))
            same = _map(_map(accs[a]).get("gpu")).get("resource") == _map(_map(accs[b]).get("gpu")).get("resource")
            if same and sa and sb and not any(k in sb and sb[k] != v for k, v in sa.items()):
                err(("catalog", "accelerators", b, "nodeSelector"),
                    f"a node could match both {a} and {b}: with queue.enabled, kinds of the same device need a node label with different values")
    for team in teams:
        if len(team) > 58:
            err(("catalog", "teams", team), "with queue.enabled a team key has at most 58 characters (its LocalQueue team-<name> is a label value)")
        if _map(_map(teams[team]).get("quota")).get("maxGpus") is not None:
            # the hub would refuse at once what Kueue would queue: two caps, one of them never waits
            err(("catalog", "teams", team, "quota", "maxGpus"),
                "with queue.enabled a team's GPU cap is queue.accelerators.<kind>.max (Kueue holds the line); "
                "quota.maxGpus would refuse people the queue would let wait")

    for key, res in resources.items():
        res = _map(res)
        base = ("catalog", "resources", key)
        if res.get("gpu") and not res.get("accelerators"):
            err(base + ("gpu",), "with queue.enabled a GPU is offered through catalog.accelerators (a kind with a pool), not as a fixed gpu")
        granting = [t for t, raw in teams.items() if key in _list(_map(raw).get("resources"))]
        for i, kind in enumerate(_list(res.get("accelerators"))):
            acc = _map(accs.get(kind))
            own = _map(acc.get("nodeSelector"))
            override = _map(_map(_map(res.get("acceleratorOverrides")).get(kind)).get("nodeSelector"))
            for label, value in override.items():
                if label in own and own[label] != value:
                    err(base + ("acceleratorOverrides", kind, "nodeSelector", label),
                        f"{label}: {value} contradicts the accelerator's {label}: {own[label]}; Kueue places {kind} by the accelerator's labels")
            count = _map(acc.get("gpu")).get("count")
            if not _is_int(count) or pool(kind) is None:
                continue
            fits = [t for t in granting if count <= most.get((t, kind), pool(kind))]
            if count > pool(kind):
                err(base + ("accelerators", i), f"needs {count} devices of {kind}, more than its pool of {pool(kind)}: no team could ever start it")
            elif granting and not fits:
                err(base + ("accelerators", i),
                    f"needs {count} devices of {kind}, more than the max of every team granting it ({', '.join(granting)}): no team could ever start it")
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
