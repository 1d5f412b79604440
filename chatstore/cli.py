"""The ``chatstore`` command: ``migrate``, ``rollback``, ``status``, ``check``,
``distribute``, ``export`` and ``purge``."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

import psycopg

from chatstore import citus, export, migrations, retention
from chatstore.devserver import DSN_ENV
from chatstore.errors import ChatstoreError

_DSN_HELP = f"libpq connection string or URL (default: ${DSN_ENV})"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _duration(text: str) -> timedelta:
    try:
        return retention.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch_size(text: str) -> int:
    value = _positive(text)
    if value > retention.MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be at most {retention.MAX_BATCH_SIZE}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatstore", description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV), help=_DSN_HELP)
    # --dsn also after the subcommand (`chatstore migrate --dsn ...`). SUPPRESS: a
    # subcommand that was not given it leaves the value above alone.
    dsn_after = argparse.ArgumentParser(add_help=False)
    dsn_after.add_argument("--dsn", default=argparse.SUPPRESS, help=_DSN_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    # How long to queue behind another run holding the migration lock.
    lock_wait = argparse.ArgumentParser(add_help=False)
    lock_wait.add_argument(
        "--lock-wait",
        type=_seconds,
        default=migrations.DEFAULT_LOCK_WAIT,
        metavar="SECONDS",
        help="wait this long for another migration run to finish"
        f" (default {migrations.DEFAULT_LOCK_WAIT:g})",
    )
    commands.add_parser(
        "migrate", parents=[dsn_after, lock_wait], help="apply every pending migration"
    )
    back = commands.add_parser(
        "rollback", parents=[dsn_after, lock_wait], help="roll back migrations"
    )
    how_many = back.add_mutually_exclusive_group()
    # default None, not 1: argparse tells "--steps 1 --all" from "--all" by identity with
    # the default, and the int 1 parsed from "1" is the cached default object.
    how_many.add_argument("--steps", type=_positive, default=None, help="how many (default 1)")
    how_many.add_argument("--all", action="store_true", help="roll back every migration")
    commands.add_parser(
        "status", parents=[dsn_after], help="list migrations and whether each is applied"
    )
    commands.add_parser(
        "check",
        parents=[dsn_after],
        help="exit 0 if every migration is applied and none unknown, else 1 (reads only)",
    )
    spread = commands.add_parser(
        "distribute",
        parents=[dsn_after],
        help="on a Citus coordinator: users as a reference table, the rest by user_id",
    )
    spread.add_argument(
        "--shard-count", type=_positive, default=None, help="shards per table (default: Citus's)"
    )
    dump = commands.add_parser(
        "export",
        parents=[dsn_after],
        help="write everything of one user to stdout as JSON lines (one snapshot)",
    )
    dump.add_argument("--user", required=True, metavar="ID", help="the user's id")
    purge = commands.add_parser(
        "purge",
        parents=[dsn_after],
        help="delete every user's conversations idle for --older-than, in small batches",
    )
    purge.add_argument(
        "--older-than",
        required=True,
        type=_duration,
        metavar="AGE",
        help="90d, 12h, 30m, 45s or 2w (m is minutes); idle: no message since then",
    )
    purge.add_argument(
        "--batch-size",
        type=_batch_size,
        default=retention.DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"conversations per transaction (default {retention.DEFAULT_BATCH_SIZE})",
    )
    purge.add_argument(
        "--archived-only", action="store_true", help="only conversations that are archived"
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="delete nothing; count what would be deleted"
    )
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"no database: pass --dsn or set ${DSN_ENV}")

    try:
        _run(args)
    except (ChatstoreError, psycopg.Error, OSError) as exc:  # one line, no traceback
        print(f"chatstore {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    """The error's message after its notes (``applying <migration>``), on one line."""
    text = ": ".join([*getattr(exc, "__notes__", []), str(exc)])
    return " ".join(text.split())


def _run(args: argparse.Namespace) -> None:
    if args.command == "migrate":
        done = migrations.apply(args.dsn, lock_wait=args.lock_wait)
        print("\n".join(f"applied  {m}" for m in done) or "up to date")
    elif args.command == "rollback":
        done = migrations.rollback(
            args.dsn, steps=None if args.all else args.steps or 1, lock_wait=args.lock_wait
        )
        print("\n".join(f"rolled back  {m}" for m in done) or "nothing to roll back")
    elif args.command == "check":
        applied = migrations._check(args.dsn)  # assert_current, with the count
        print(f"up to date ({applied} migrations applied)")
    elif args.command == "distribute":
        done = citus.distribute(args.dsn, shard_count=args.shard_count)
        print("\n".join(done) or "already distributed")
    elif args.command == "export":
        _export(args.dsn, args.user)
    elif args.command == "purge":
        print(_purged(args))
    else:
        for s in migrations.status(args.dsn):
            print(f"{'applied' if s.applied else 'pending'}  {s.id}")


def _purged(args: argparse.Namespace) -> str:
    report = retention.purge_conversations(
        args.dsn,
        older_than=args.older_than,
        batch_size=args.batch_size,
        archived_only=args.archived_only,
        dry_run=args.dry_run,
    )
    which = "archived conversations" if args.archived_only else "conversations"
    batches = f"{report.batches} batch{'' if report.batches == 1 else 'es'}"
    return (
        f"{'would purge' if report.dry_run else 'purged'} {report.conversations} {which}"
        f" ({report.messages} messages, {report.agent_items} agent items)"
        f" idle since {report.cutoff.isoformat(' ', 'seconds')}: {batches}, {report.seconds:.2f} s"
    )


def _export(dsn: str, user_id: str) -> None:
    """UTF-8 JSON lines to stdout as bytes (whatever its text encoding), in batches."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for record in export.export_user_sync(conn, user_id=user_id):
                out.write(export.json_line(record))
        out.flush()
    except BrokenPipeError:
        # The reader left (`| head`): stdout to /dev/null, so that the interpreter's
        # final flush does not fail again with a second message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise


if __name__ == "__main__":
    sys.exit(main())
