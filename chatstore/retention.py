"""The retention job: delete the conversations nobody has written to for a while.

:func:`purge_conversations` (and ``chatstore purge --older-than 90d``) deletes, across
all users, every conversation whose last activity is older than a cutoff, with its
messages and agent items (``ON DELETE CASCADE``). Last activity is
``coalesce(last_message_at, updated_at)``: the time of the last message (appended by
``append_message(s)`` or by ``add_agent_items``' transcript; an imported history keeps
its own times), or, for a conversation without messages, its creation or last rename.
Renaming or archiving a conversation that has messages does not extend its life, nor
do agent items without a transcript, pop and clear. The cutoff is taken once, from the
database's clock, when the run starts.

It works in small batches, each its own short transaction, oldest first, walking
``conversations_last_activity_idx`` (migration 0015) in keyset order, so that no batch
reads the index entries an earlier one left dead. Appends go on meanwhile:

- On PostgreSQL a batch is one statement that locks its conversations ``FOR UPDATE
  SKIP LOCKED``: a conversation an append holds is passed over (the append makes it
  recent), never waited for. An append that reaches a conversation the batch holds
  waits for that batch only, then gets ``NotFound``.
- On Citus (``chatstore distribute``) row locks cannot be taken across shards: a batch
  reads its candidates (one ordered, limited read of every shard), then deletes them in
  one multi-shard statement that checks the cutoff again, so a conversation appended to
  in between is spared. It waits for a row an append holds (milliseconds) at most
  ``lock_timeout``; past that, or on a deadlock, the batch's conversations are deleted
  one by one with ``SKIP LOCKED`` (one shard each), passing over the held one.

Each batch runs under ``lock_timeout``, so a DDL lock (a migration) makes it fail fast
with :class:`~chatstore.errors.TimedOut` instead of queueing the application behind it;
what earlier batches deleted stays deleted, and running it again continues.

It runs as the tables' owner (the role that migrates): row-level security would show
``chatstore_app`` no conversation at all, so that role gets
:class:`~chatstore.errors.PermissionDenied`. docs/operations.md shows a cron entry.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from chatstore import _core
from chatstore.errors import InvalidInput, PermissionDenied

#: Conversations per batch (their messages and agent items go with them).
DEFAULT_BATCH_SIZE: Final = 500
MAX_BATCH_SIZE: Final = 10_000
#: Seconds a batch may wait for a lock before it gives up (see the module docstring).
DEFAULT_LOCK_TIMEOUT: Final = 1.0
#: The longest ``older_than``: keeps the cutoff well inside timestamptz's range.
MAX_AGE: Final = timedelta(days=36_500)

_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"([1-9][0-9]{0,9})([smhdw])")


@dataclass(frozen=True)
class PurgeReport:
    """What one run of :func:`purge_conversations` removed (or would remove)."""

    #: Conversations last active before this moment were purged.
    cutoff: datetime
    conversations: int
    #: Messages and agent items of those conversations, from their counters (both are
    #: append-only, so a counter is the number of rows).
    messages: int
    agent_items: int
    #: Transactions that found conversations to purge.
    batches: int
    seconds: float
    #: True: nothing was deleted; the counts are what a real run would have removed then.
    dry_run: bool


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w``: a whole number above 0 and one unit
    (``m`` is minutes; there is no month, say ``180d``). ValueError for anything else,
    spaces, signs, fractions and combinations included, and beyond 36,500 days."""
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(
            f"not a duration: {text!r} (a whole number and one unit, s, m, h, d or w: 90d)"
        )
    try:
        value = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    except OverflowError:
        value = MAX_AGE + MAX_AGE
    if value > MAX_AGE:
        raise ValueError(f"{text!r} is more than {MAX_AGE.days} days")
    return value


_CANDIDATES: Final[LiteralString] = """
    SELECT user_id, id, coalesce(last_message_at, updated_at) AS active_at,
           message_count, agent_item_count
    FROM conversations
    WHERE coalesce(last_message_at, updated_at) < %(cutoff)s
      -- The keyset position; NULLs (the first batch): before every row, since no
      -- conversation has an empty user_id (users_id_check).
      AND (coalesce(last_message_at, updated_at), user_id, id) > (
          coalesce(%(after_active_at)s::timestamptz, '-infinity'),
          coalesce(%(after_user_id)s::text, ''),
          coalesce(%(after_id)s::bigint, 0)
      )
      AND (archived_at IS NOT NULL OR NOT %(archived_only)s)
    ORDER BY coalesce(last_message_at, updated_at), user_id, id
    LIMIT %(batch_size)s
"""
# The counts of a batch and the keyset position after it (the last candidate in index
# order, as the database orders text): one row, whether or not it found any.
_SUMMARY: Final[LiteralString] = """
SELECT g.conversations, g.messages, g.agent_items, l.active_at, l.user_id, l.id
FROM (
    SELECT count(*) AS conversations,
           coalesce(sum(message_count), 0) AS messages,
           coalesce(sum(agent_item_count), 0) AS agent_items
    FROM gone
) AS g
LEFT JOIN LATERAL (
    SELECT active_at, user_id, id FROM doomed
    ORDER BY active_at DESC, user_id DESC, id DESC
    LIMIT 1
) AS l ON true
"""
# PostgreSQL: one statement per batch; rows an append holds are skipped, never waited for.
_PURGE_BATCH: Final[LiteralString] = (
    "WITH doomed AS ("
    + _CANDIDATES
    + """    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM conversations AS c
    USING doomed AS d
    WHERE c.user_id = d.user_id AND c.id = d.id
    RETURNING c.message_count, c.agent_item_count
)"""
    + _SUMMARY
)
# A dry run: the same walk, read only.
_COUNT_BATCH: Final[LiteralString] = (
    "WITH doomed AS (" + _CANDIDATES + "), gone AS (SELECT * FROM doomed)" + _SUMMARY
)
# Citus: candidates first (every shard's index, merged in order on the coordinator) ...
_CITUS_CANDIDATES: Final[LiteralString] = _CANDIDATES
# ... then one multi-shard DELETE of those, the cutoff checked again on the row it locks;
# user_id = ANY names the shards.
_CITUS_DELETE: Final[LiteralString] = """
DELETE FROM conversations
WHERE user_id = ANY(%(user_ids)s::text[])
  AND (user_id, id) IN (SELECT * FROM unnest(%(user_ids)s::text[], %(ids)s::bigint[]))
  AND coalesce(last_message_at, updated_at) < %(cutoff)s
  AND (archived_at IS NOT NULL OR NOT %(archived_only)s)
RETURNING message_count, agent_item_count
"""
# ... or, when that waited too long, one conversation at a time (one shard: row locks
# work there), skipping one that is held.
_CITUS_DELETE_ONE: Final[LiteralString] = """
WITH doomed AS (
    SELECT user_id, id
    FROM conversations
    WHERE user_id = %(user_id)s AND id = %(id)s
      AND coalesce(last_message_at, updated_at) < %(cutoff)s
      AND (archived_at IS NOT NULL OR NOT %(archived_only)s)
    FOR UPDATE SKIP LOCKED
)
DELETE FROM conversations AS c
USING doomed AS d
WHERE c.user_id = %(user_id)s AND c.user_id = d.user_id AND c.id = d.id
RETURNING c.message_count, c.agent_item_count
"""
_CITUS: Final[LiteralString] = "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
_DISTRIBUTED: Final[LiteralString] = """
SELECT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'conversations'::regclass)
"""


def purge_conversations(
    dsn: str,
    *,
    older_than: timedelta,
    batch_size: int = DEFAULT_BATCH_SIZE,
    archived_only: bool = False,
    dry_run: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> PurgeReport:
    """Delete every conversation of every user idle for ``older_than``, with its
    messages and agent items, ``batch_size`` (1-10,000) conversations per transaction;
    with ``archived_only``, only archived ones. ``dry_run`` deletes nothing and counts
    what it would delete. ``dsn`` names the database (as the tables' owner): the job
    opens its own autocommit connection, since each batch commits on its own.

    Errors are :mod:`chatstore.errors`; after one, what earlier batches deleted stays
    deleted and the report is lost: run it again, it continues.
    """
    if not isinstance(dsn, str):
        raise InvalidInput("dsn must be a connection string")
    if not isinstance(older_than, timedelta) or not timedelta(0) < older_than <= MAX_AGE:
        raise InvalidInput(f"older_than must be a timedelta above 0, at most {MAX_AGE.days} days")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidInput("batch_size must be an integer")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch_size must be from 1 to {MAX_BATCH_SIZE}")
    if (
        isinstance(lock_timeout, bool)
        or not isinstance(lock_timeout, (int, float))
        or not 0 < lock_timeout <= 3600
    ):
        raise InvalidInput("lock_timeout must be a number of seconds above 0, at most 3600")
    only_archived = _core.flag(archived_only, "archived_only")
    counting = _core.flag(dry_run, "dry_run")
    started = time.monotonic()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return _purge(
                conn,
                older_than=older_than,
                batch_size=batch_size,
                archived_only=only_archived,
                dry_run=counting,
                timeout=f"{max(1, round(lock_timeout * 1000))}ms",
                started=started,
            )
    except psycopg.Error as exc:
        raise _core.translate(exc) from exc


def _purge(
    conn: psycopg.Connection[Any],
    *,
    older_than: timedelta,
    batch_size: int,
    archived_only: bool,
    dry_run: bool,
    timeout: str,
    started: float,
) -> PurgeReport:
    _core.check_session(conn.pgconn)
    secured = conn.execute("SELECT row_security_active('conversations')").fetchone()
    if secured is None or secured[0]:
        raise PermissionDenied(
            "purge_conversations runs as the tables' owner: row-level security hides"
            f" every user's conversations from {conn.info.user!r}"
        )
    distributed = bool(_one(conn, _CITUS)) and bool(_one(conn, _DISTRIBUTED))
    cutoff: datetime = _one(conn, "SELECT now() - %s::interval", [older_than])
    if not distributed:
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(timeout)))
    params: dict[str, object] = {
        "cutoff": cutoff,
        "archived_only": archived_only,
        "batch_size": _core.bigint(batch_size),
    }
    totals = [0, 0, 0]
    batches = 0
    position: tuple[Any, ...] = (None, None, None)
    while True:
        params |= dict(zip(("after_active_at", "after_user_id", "after_id"), position, strict=True))
        if dry_run or not distributed:
            row = _one_row(conn, _COUNT_BATCH if dry_run else _PURGE_BATCH, params)
            counts, last = row[:3], row[3:]
            if last[0] is None:  # no candidate left
                break
        else:
            found = _citus_batch(conn, params, timeout)
            if found is None:
                break
            counts, last = found
        batches += 1
        totals = [total + int(n) for total, n in zip(totals, counts, strict=True)]
        position = (last[0], last[1], _core.bigint(last[2]))
    return PurgeReport(
        cutoff=cutoff,
        conversations=totals[0],
        messages=totals[1],
        agent_items=totals[2],
        batches=batches,
        seconds=time.monotonic() - started,
        dry_run=dry_run,
    )


def _citus_batch(
    conn: psycopg.Connection[Any], params: dict[str, object], timeout: str
) -> tuple[tuple[int, int, int], tuple[Any, ...]] | None:
    """One batch on a distributed database: its counts and its last candidate, or None
    when no candidate is left."""
    candidates = conn.execute(_CITUS_CANDIDATES, params).fetchall()
    if not candidates:
        return None
    user_ids = [row[0] for row in candidates]
    ids = [_core.bigint(row[1]) for row in candidates]
    try:
        with conn.transaction():
            _limit_lock_waits(conn, timeout)
            gone = conn.execute(
                _CITUS_DELETE, {**params, "user_ids": user_ids, "ids": ids}
            ).fetchall()
    except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
        # A row an append holds (or a lock cycle with one): rolled back; one by one now.
        gone = []
        for user_id, conversation_id in zip(user_ids, ids, strict=True):
            with conn.transaction():
                _limit_lock_waits(conn, timeout)
                gone += conn.execute(
                    _CITUS_DELETE_ONE, {**params, "user_id": user_id, "id": conversation_id}
                ).fetchall()
    counts = (len(gone), sum(r[0] for r in gone), sum(r[1] for r in gone))
    last_user_id, last_id, last_active_at = candidates[-1][:3]
    return counts, (last_active_at, last_user_id, last_id)


def _limit_lock_waits(conn: psycopg.Connection[Any], timeout: str) -> None:
    # A SET LOCAL statement reaches the shards' sessions under
    # citus.propagate_set_commands = 'local' (which chatstore distribute sets for the
    # database; set here too in case it was not); set_config() would not.
    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(timeout)))


def _one(conn: psycopg.Connection[Any], query: LiteralString, params: Any = None) -> Any:
    return _one_row(conn, query, params)[0]


def _one_row(conn: psycopg.Connection[Any], query: LiteralString, params: Any) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None  # every query here returns one row
    return tuple(row)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOCK_TIMEOUT",
    "MAX_AGE",
    "MAX_BATCH_SIZE",
    "PurgeReport",
    "parse_duration",
    "purge_conversations",
]
