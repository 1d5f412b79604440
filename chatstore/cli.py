"""The ``chatstore`` command: ``migrate``, ``rollback`` and ``status``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from chatstore import migrations
from chatstore.devserver import DSN_ENV


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatstore", description=__doc__)
    parser.add_argument(
        "--dsn",
        default=os.environ.get(DSN_ENV),
        help=f"libpq connection string or URL (default: ${DSN_ENV})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every pending migration")
    back = commands.add_parser("rollback", help="roll back applied migrations")
    back.add_argument("--steps", type=int, default=1, help="how many (default 1)")
    back.add_argument("--all", action="store_true", help="roll back every migration")
    commands.add_parser("status", help="list migrations and whether each is applied")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"no database: pass --dsn or set ${DSN_ENV}")

    if args.command == "migrate":
        done = migrations.apply(args.dsn)
        print("\n".join(f"applied  {m}" for m in done) or "up to date")
    elif args.command == "rollback":
        done = migrations.rollback(args.dsn, steps=None if args.all else args.steps)
        print("\n".join(f"rolled back  {m}" for m in done) or "nothing to roll back")
    else:
        for s in migrations.status(args.dsn):
            print(f"{'applied' if s.applied else 'pending'}  {s.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
