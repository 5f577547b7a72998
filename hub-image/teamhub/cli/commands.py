"""The `teamhub` command: the operator's way to check values before anything is deployed.

Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error or unreadable file.
"""

from __future__ import annotations

import argparse
import sys

from ..auth.passwords import PasswordError, hash_password, read_new_password
from ..catalog import devices
from ..catalog.access import Person, access_of, resolve
from ..catalog.loader import load
from ..ops import prepull
from ..values import generate
from ..values.quantities import format_cpu
from ..values.source import YamlFileError
from ..values.validation import EVERYONE
from . import bundle, check, link, ops, usage, users


def _print_problems(result, out=sys.stdout) -> None:
    for problem in result.problems:
        print(problem, file=out)


def cmd_validate(args) -> int:
    result = load(args.files, demo=args.demo)
    _print_problems(result)
    n_err, n_warn = len(result.errors), len(result.warnings)
    files = ", ".join(args.files)
    if n_err:
        print(f"{files}: invalid: {n_err} error(s), {n_warn} warning(s)", file=sys.stderr)
        return 1
    print(f"{files}: valid ({len(result.catalog.resources)} resources, {len(result.catalog.teams)} teams, {n_warn} warning(s))")
    if args.cluster:
        return _validate_cluster(result, args)
    return 0


def _validate_cluster(result, args) -> int:
    from .cluster import ClusterUnreachable, report

    try:
        lines, warnings = report(result.catalog, result.values, args.release, args.kubeconfig)
    except ClusterUnreachable as exc:
        print(f"teamhub: cannot read the cluster: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(f"devices published for {line}")
    for warning in warnings:
        print(f"warning: {warning}")
    return 0


def cmd_hash_password(args) -> int:
    try:
        password = read_new_password()
    except PasswordError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 2
    print(hash_password(password, rounds=args.rounds))
    return 0


def _kind_text(acc) -> str:
    return f"{acc.gpu.count}x {acc.gpu.resource}" if acc.gpu else devices.text(acc.devices)


def _accelerators_text(catalog, resource) -> str:
    if resource.gpu:
        return f"{resource.gpu.count}x {resource.gpu.resource}"
    if resource.accelerators:
        return " | ".join(
            f"{catalog.accelerators[a].display_name} ({_kind_text(catalog.accelerators[a])})"
            for a in resource.accelerators
        )
    return "-"


def _hub_name(user: str) -> str:
    """The name as the hub stores it: lowercased like JupyterHub does, a bare name means local."""
    user = user.lower()
    return user if ":" in user else f"local:{user}"


def cmd_catalog(args) -> int:
    result = load(args.files, demo=True)  # shows who gets what and deploys nothing: the demo's accounts may be asked about
    if not result.ok:
        _print_problems(result, sys.stderr)
        return 1
    catalog = result.catalog
    unknown = [t for t in args.team if t not in catalog.teams]
    if unknown:
        print(f"teamhub: unknown team(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.user:
        access = resolve(catalog, Person(_hub_name(args.user), frozenset(args.group)))
    else:
        access = access_of(catalog, tuple(t for t in catalog.teams if t in args.team or t == EVERYONE))
    charged = access.charged_team
    resources = access.resources
    print(f"teams: {', '.join(access.teams) or '(none)'}")
    header = ("RESOURCE", "IMAGE", "CPU", "MEMORY", "GPU / ACCELERATORS", "MAX MIN", "TEAM")
    rows = [header]
    for r in resources:
        cpu = format_cpu(r.cpu_request) + (f"-{format_cpu(r.cpu_limit)}" if r.cpu_limit is not None else "")
        mem = str(r.memory_request) + (f"-{r.memory_limit}" if r.memory_limit is not None else "")
        rows.append((r.key, catalog.images[r.image].ref, cpu, mem, _accelerators_text(catalog, r),
                     str(catalog.resource_limit_minutes(r)), charged[r.key] or "(admin)"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if len(rows) == 1:
        print("(nothing: these teams may not launch any resource)")
    return 0


def cmd_schema(args) -> int:
    if args.check:
        stale = generate.stale_outputs()
        for path in stale:
            print(f"{path} is stale: run `teamhub schema --write`", file=sys.stderr)
        return 1 if stale else 0
    for path in generate.write_outputs():
        print(f"wrote {path}")
    return 0


DEMO_VALUES = ("config/values.yaml", "config/demo/values.yaml")


def cmd_demo(args) -> int:
    from .demo import run

    return run(args.values, args.port, args.state)


def register(sub) -> None:
    p = sub.add_parser("validate", help="check values files (merged in order, like helm -f)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--demo", action="store_true",
                   help="check them as `teamhub demo` runs them: the demo accounts' published password hashes are allowed")
    p.add_argument("--cluster", action="store_true",
                   help="also read the cluster (a kubeconfig): per DRA accelerator kind, how many devices its DeviceClasses "
                        "match in the ResourceSlices, and warn about missing DeviceClasses and kinds that match none")
    p.add_argument("--kubeconfig", default=None, help="with --cluster: the kubeconfig (default KUBECONFIG or ~/.kube/config)")
    p.add_argument("--release", default="teamhub", help="with --cluster: the helm release name (names the chart's DeviceClasses)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("hash-password", help="read a password (not echoed) and print its bcrypt hash")
    p.add_argument("--rounds", type=int, default=12, help="bcrypt cost (default 12)")
    p.set_defaults(func=cmd_hash_password)

    p = sub.add_parser("catalog", help="show what members of teams (or one user) may launch")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--team", action="append", default=[], help="a team key (repeatable)")
    p.add_argument("--user", help="a hub username (local:alice, github:octo); a bare name means local")
    p.add_argument("--group", action="append", default=[], help="with --user: a provider group, e.g. org:team")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("schema", help="generate chart/values.schema.json, chart/values.yaml and docs/values-reference.md from the schema source")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="write the generated files (default)")
    g.add_argument("--check", action="store_true", help="fail when a generated file is stale")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("demo", help="run the hub on this machine (JupyterLab as local processes, no cluster)")
    p.add_argument("--values", nargs="+", default=list(DEMO_VALUES), metavar="FILE",
                   help="values files merged in order (default: %(default)s: the operator's values and the demo accounts)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--state", default=None, help="folder for the hub database and homes (default ./.demo)")
    p.set_defaults(func=cmd_demo)


# Every group of subcommands registers itself the same way: `register(sub)` in its module.
REGISTRARS = (
    register,  # validate, hash-password, catalog, schema, demo
    prepull.register,  # prepull-await: the chart's prepuller hook
    users.register,  # users: the local accounts file
    check.register,  # check-config: the chart's pre-upgrade hook
    ops.register,  # set-image-tag, images, release, db: operator subcommands used by scripts/
    usage.register,  # usage: totals from the usage records
    link.register,  # link: a teacher's launch link
    bundle.register,  # bundle: air-gapped installs (chart and images by digest)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teamhub", description="Check and inspect teamhub values.")
    sub = parser.add_subparsers(dest="command", required=True)
    for register_group in REGISTRARS:
        register_group(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except YamlFileError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
