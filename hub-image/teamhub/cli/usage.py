"""`teamhub usage`: totals from the usage records, against the hub's database or `--db URL/file`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..usage import totals
from ..usage.totals import DAY, parse_time


def db_url(args) -> str:
    """--db (a SQLAlchemy URL or an SQLite file), else the hub's own database from its values."""
    if args.db:
        if "://" in args.db:
            from ..db import settings

            return settings.backend({"hub": {"db": {"type": "postgres", "url": args.db}}}).url \
                if args.db.startswith(("postgres://", "postgresql://")) else args.db
        path = Path(args.db)
        if not path.is_file():
            raise ValueError(f"--db {args.db}: no such database file")
        return f"sqlite:///{path.resolve()}"
    from ..db import settings
    from .db import values_or_empty

    s = settings.backend(values_or_empty(args), args.data_dir)
    if s.path is not None and not s.path.is_file():
        raise ValueError(f"no hub database at {s.path}; give --db URL or FILE")
    return s.url


def cmd_usage(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from .. import clock
    from ..usage.store import make_engine, migrate

    now = clock.now()
    try:
        by = tuple(g.strip() for g in args.by.split(",") if g.strip())
        bad = [g for g in by if g not in totals.GROUPS]
        if bad:
            raise ValueError(f"--by {args.by}: cannot group by {', '.join(bad)}; choose from {', '.join(totals.GROUPS)}")
        end = parse_time(args.to, "--to") if args.to else now
        start = parse_time(args.from_, "--from") if args.from_ else end - 30 * DAY
        if start >= end:
            raise ValueError("--from must be before --to")
        url = db_url(args)
    except ValueError as exc:
        print(f"teamhub: {exc}", file=sys.stderr)
        return 2
    try:
        migrate(url)  # a database the hub has not opened since usage records exist: empty tables, not an error
        engine = make_engine(url)
        try:
            with engine.connect() as con:
                rows = totals.query(con, totals.Period(start, end, now), by)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        print(f"teamhub: cannot read usage records: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(totals.render(rows, by, args.format))
    return 0


def register(sub) -> None:
    p = sub.add_parser("usage", help="GPU-hours, server-hours, CPU-core-hours, sessions and failed starts for a period")
    p.add_argument("--from", dest="from_", metavar="WHEN", help="start of the period (date or ISO time; default: 30 days before --to)")
    p.add_argument("--to", metavar="WHEN", help="end of the period (default: now)")
    p.add_argument("--by", default="team", help=f"comma-separated grouping from {','.join(totals.GROUPS)} (default: team)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--db", help="a database URL or SQLite file (default: the hub's database from its values)")
    p.add_argument("--values", help="values file (default env TEAMHUB_VALUES)")
    p.add_argument("--data-dir", help="hub data folder (default env TEAMHUB_DATA_DIR or /srv/teamhub/data)")
    p.set_defaults(func=cmd_usage)
