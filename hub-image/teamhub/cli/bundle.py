"""`teamhub bundle create|verify|push`: installs where the cluster cannot reach the internet (issue 29).

Exit codes: 0 done, 1 a problem with the bundle, an image or a registry (said in sentences), 2 usage.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _registries(args, plain_http, login_host=None):
    from ..bundle.tools import Registries

    logins = {}
    if getattr(args, "username", None):
        if not args.password_stdin:
            raise SystemExit("teamhub: --username needs --password-stdin (a password is never taken from the command line)")
        logins[login_host] = (args.username, sys.stdin.readline().rstrip("\n"))
    return Registries(plain_http=set(plain_http), logins=logins)


def _platform(text: str) -> str:
    import argparse
    import re

    if not re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a platform such as linux/amd64 or linux/arm64/v8")
    return text


def cmd_create(args) -> int:
    from ..bundle import create, imagelist, layout, tools
    from ..values.validation import InvalidValues

    for f in args.values:
        if not Path(f).is_file():
            print(f"teamhub: {f} does not exist", file=sys.stderr)
            return 2
    try:
        registries = _registries(args, args.plain_http, args.login_registry or tools.ANY_REGISTRY)
        return create.create(args.values, Path(args.output), Path(args.chart), args.helm, registries, jobs=args.jobs,
                             platforms=tuple(dict.fromkeys(args.platform)))
    except (imagelist.ImageListError, create.CreateError, layout.LayoutError, tools.ToolError) as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 1
    except InvalidValues as exc:
        print(f"teamhub: the values are invalid, run `teamhub validate` on them: {exc}", file=sys.stderr)
        return 1


def cmd_verify(args) -> int:
    from ..bundle import verify

    found = verify.problems(Path(args.bundle))
    for line in found:
        print(f"teamhub: {line}", file=sys.stderr)
    if found:
        print(f"teamhub: {args.bundle}: {len(found)} problem(s); do not install from this copy", file=sys.stderr)
        return 1
    doc = verify.load_manifest(Path(args.bundle))
    print(f"{args.bundle}: intact ({len(doc['files'])} files, {len(doc['blobs'])} blobs, {len(doc['images'])} images)")
    return 0


def cmd_push(args) -> int:
    from ..bundle import push

    registries = _registries(args, [args.registry] if args.plain_http else [], args.registry)
    try:
        return push.push(Path(args.bundle), args.registry, args.prefix, registries, Path(args.overlay), args.jobs)
    except push.ToolError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 1


def register(sub) -> None:
    bundle = sub.add_parser("bundle", help="air-gapped installs: the chart and every image, pinned by digest")
    group = bundle.add_subparsers(dest="bundle_command", required=True)

    p = group.add_parser("create", help="package the chart, the values and every image they run into a folder")
    p.add_argument("--values", action="append", required=True, metavar="FILE", help="values file (repeatable, merged like helm -f)")
    p.add_argument("-o", "--output", required=True, metavar="DIR|FILE.tar",
                   help="the bundle folder, or one .tar file (made in FILE.tar.partial/); an interrupted create resumes")
    p.add_argument("--chart", default="chart", help="the chart folder (default ./chart)")
    p.add_argument("--helm", default="helm", help="the helm binary (default helm on PATH)")
    p.add_argument("--plain-http", action="append", default=[], metavar="HOST:PORT",
                   help="a source registry reached over plain HTTP (repeatable); every other one must speak TLS")
    p.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]", type=_platform,
                   help="keep only this platform of multi-platform images (repeatable; default: every platform)")
    p.add_argument("--username", help="registry user (default: the docker config file's credentials)")
    p.add_argument("--password-stdin", action="store_true", help="read the registry password from standard input")
    p.add_argument("--login-registry", metavar="HOST:PORT",
                   help="the registry --username is for (needed when the images come from several)")
    p.add_argument("--jobs", type=int, default=4, help="manifests and blobs downloaded at once (default 4)")
    p.set_defaults(func=cmd_create)

    p = group.add_parser("verify", help="check every file and blob of a bundle against its manifest")
    p.add_argument("bundle", metavar="DIR|FILE.tar")
    p.set_defaults(func=cmd_verify)

    p = group.add_parser("push", help="copy every image into the site's registry and write a values overlay")
    p.add_argument("bundle", metavar="DIR|FILE.tar")
    p.add_argument("--registry", required=True, metavar="HOST:PORT", help="the site's registry")
    p.add_argument("--prefix", default="", help="a path under the registry for every image, e.g. teamhub/")
    p.add_argument("--plain-http", action="store_true", help="the site's registry speaks plain HTTP (never assumed)")
    p.add_argument("--username", help="registry user (default: the docker config file's credentials)")
    p.add_argument("--password-stdin", action="store_true", help="read the registry password from standard input")
    p.add_argument("--jobs", type=int, default=4, help="images pushed at once (default 4)")
    p.add_argument("--overlay", default="site-values.yaml", metavar="FILE",
                   help="the values overlay to write (default ./site-values.yaml)")
    p.set_defaults(func=cmd_push)
