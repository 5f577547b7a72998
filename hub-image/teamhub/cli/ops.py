"""Operator subcommands used by scripts/: image tags, values edits (and the database group, see db.py).

`teamhub.cli.commands` registers these like every group: `ops.register(sub)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..ops import buildplan as images
from ..ops import release
from ..values import edit as values_edit


def cmd_set_image_tag(args) -> int:
    try:
        changed = values_edit.set_image(args.values, args.path, args.tag, name=args.name, digest=args.digest)
    except values_edit.ValuesEditError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 2
    print(f"{args.values}: {args.path}.tag = {args.tag}" + (f", digest = {args.digest}" if args.digest else "")
          + ("" if changed else " (unchanged)"))
    return 0


def cmd_images(args) -> int:
    try:
        if args.action == "digest":
            if len(args.names) != 1:
                print("teamhub: images digest needs one image key", file=sys.stderr)
                return 2
            manifest = None
        else:
            manifest = images.load_manifest(args.manifest) if args.manifest else images.load_manifest()
        if args.action == "list":
            for key, spec in manifest.images.items():
                print(f"{key}\t{spec.name}\t{','.join(spec.values) or '-'}")
        elif args.action == "tags":
            for p in images.plan(manifest, args.names):
                print(f"{p.key}\t{p.ref}")
        elif args.action == "digest":  # after a push: NAME is the image key, --argv-dir the plan's folder
            d = Path(args.argv_dir or ".")
            log = d / f"{args.names[0]}.push.log"
            print(images.pushed_digest(d / f"{args.names[0]}.digest", log.read_text(encoding="utf-8") if log.is_file() else ""))
        else:  # plan
            runnable = None if args.platforms == "all" else (
                images.runnable_platforms() if args.platforms == "runnable" else args.platforms.split(","))
            for line in images.plan_lines(manifest, args.names, args.engine, args.argv_dir, runnable, args.mount):
                print(line)
    except images.ManifestError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_release(args) -> int:
    if args.action == "diff":
        old = open(args.files[0], encoding="utf-8").read() if len(args.files) > 0 else ""
        new = open(args.files[1], encoding="utf-8").read() if len(args.files) > 1 else ""
        if args.new_is_release:
            new = release.manifest_of_release(new)
        print("\n".join(release.format_diff(release.diff_manifests(old, new))))
        return 0
    if not args.files:
        print("teamhub: release history/target need helm's `history -o json` file", file=sys.stderr)
        return 2
    revisions = release.load_history(args.files[0], args.files[1] if len(args.files) > 1 else None)
    if args.action == "history":
        print("\n".join(release.format_history(revisions, args.last)))
        return 0
    if args.action == "current":
        cur = release.current(revisions)
        print(cur.number if cur else "")
        return 0
    if args.action == "numbers":
        print("\n".join(str(r.number) for r in (revisions[-args.last:] if args.last else revisions)))
        return 0
    try:  # target
        target = release.pick_target(revisions, args.revision)
    except release.NoSuchRevision as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 1
    warning = release.target_warning(revisions, target)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    note = release.target_note(revisions, target)
    if note:
        print(f"NOTE: {note}", file=sys.stderr)
    print(target.number)
    return 0


def register(sub) -> None:
    p = sub.add_parser("set-image-tag", help="set an image's tag in a values file, keeping comments")
    p.add_argument("--values", default="config/values.yaml", help="values file to edit (default config/values.yaml)")
    p.add_argument("--name", help="also set the image name (repository)")
    p.add_argument("--digest", help="also set the pushed digest (sha256:...); without it a changed tag drops a stale digest")
    p.add_argument("path", help="dotted path of the image mapping: catalog.images.KEY or hub.image")
    p.add_argument("tag")
    p.set_defaults(func=cmd_set_image_tag)

    p = sub.add_parser("images", help="the image manifest (dockerfiles/images.yaml) and computed tags")
    p.add_argument("action", choices=["list", "tags", "plan", "digest"],
                   help="plan: build order and commands (--argv-dir: also as argv files); digest KEY: the digest a push reported")
    p.add_argument("names", nargs="*", metavar="NAME", help="images (default: all); bases they need come first")
    p.add_argument("--manifest", help="manifest file (default dockerfiles/images.yaml)")
    p.add_argument("--engine", default="docker", choices=["docker", "podman", "buildah"])
    p.add_argument("--argv-dir", help="folder for the commands as NUL-separated argv files (scripts/build_images.sh)")
    p.add_argument("--platforms", default="all",
                   help="plan: all (the manifest's), runnable (this machine's and binfmt_misc's), or a comma list")
    p.add_argument("--mount", action="append", default=[], metavar="SRC:DST",
                   help="plan: a host file bound read-only into the build's RUN steps (buildah, podman)")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("release", help="helpers for the update and rollback scripts (reads helm's output)")
    p.add_argument("action", choices=["diff", "history", "current", "numbers", "target"],
                   help="diff OLD NEW manifests; history HISTORY_JSON [VALUES_DIR]; current HISTORY_JSON; target HISTORY_JSON [--revision N]")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--revision", type=int, help="with target: the wanted revision (default: the newest earlier one that was deployed successfully and differs)")
    p.add_argument("--last", type=int, help="with history: show only the last N revisions")
    p.add_argument("--new-is-release", action="store_true",
                   help="with diff: NEW is the JSON of `helm upgrade --dry-run=server -o json`, not a manifest")
    p.set_defaults(func=cmd_release)

    from . import db  # imports SQLAlchemy/alembic lazily: only `db` needs them

    db.register(sub)



def main(argv=None) -> int:
    """`python -m teamhub.cli.ops ...`: the same subcommands without loading the validator (starts ~10x faster)."""
    import argparse

    parser = argparse.ArgumentParser(prog="teamhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
