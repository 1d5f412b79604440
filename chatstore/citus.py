"""Distribute a migrated chatstore database over a Citus cluster, by user.

``users`` becomes a reference table (a copy on every node: its email is unique across
all users), and ``conversations``, ``tasks``, ``messages`` and ``agent_items`` are
distributed by ``user_id``, co-located, so everything of one user lives on one node and every named
query runs on one shard. The schema stays the migrations' own: nothing here creates a
constraint or an index, and the foreign keys that Citus needs out of the way while it
distributes are read from the catalog and put back exactly as they were.

All of it runs in one transaction on the coordinator: it happens entirely or not at all,
and a second run finds the tables distributed and does nothing. Run it once, after
``chatstore migrate``; later migrations apply as before (Citus propagates DDL to the
shards), and one that creates a table distributes it itself (0012 does).

The triggers stay (docs/decisions.md, "Triggers on Citus"): Citus distributes tables
with triggers only under ``citus.enable_unsafe_triggers``, which this module also sets
for the database (``ALTER DATABASE ... SET``), so every later migration has it.

Row-level security (chatstore.rls) needs two things on Citus, also set here: the
policies on the shards read ``chatstore.user_id`` in the sessions Citus opens to the
workers, which receive it only from ``SET LOCAL`` under
``citus.propagate_set_commands = 'local'``; and Citus names every defaulted column
(ids, timestamps, counters) in the INSERT it sends a shard, so ``chatstore_app`` gets
INSERT on those columns.
"""

from __future__ import annotations

from typing import Any, Final, LiteralString, cast

import psycopg
from psycopg import sql

from chatstore import migrations
from chatstore.errors import NotDistributable
from chatstore.rls import APP_ROLE

#: The reference table, then the distributed tables; the first of these anchors the
#: co-location group of the others.
REFERENCE: Final = "users"
DISTRIBUTED: Final = ("conversations", "tasks", "messages", "agent_items")
COLUMN: Final = "user_id"
#: Set for the database, so every later session has them:
#: - triggers on distributed tables (message numbers, updated_at, append-only) may be
#:   created, by this module and by later migrations;
#: - ``SET LOCAL`` reaches the shards' sessions, so ``chatstore.rls.acting_as``'s
#:   ``chatstore.user_id`` is what the policies on the shards read.
SETTINGS: Final = {
    "citus.enable_unsafe_triggers": "on",
    "citus.propagate_set_commands": "local",
}

_CITUS: Final[LiteralString] = """
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'citus')
"""
_IS_COORDINATOR: Final[LiteralString] = "SELECT citus_is_coordinator()"
# How Citus holds each of chatstore's tables now: no row, a reference table
# ('n', 't'), or a hash-distributed one with its column and co-location group.
_STATE: Final[LiteralString] = """
SELECT logicalrelid::regclass::text, partmethod, repmodel,
       column_to_column_name(logicalrelid, partkey), colocationid
FROM pg_dist_partition
WHERE logicalrelid = ANY (%s::regclass[])
ORDER BY 1
"""
# The foreign keys of the distributed tables, as the migrations made them.
_FOREIGN_KEYS: Final[LiteralString] = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY (%s::regclass[])
ORDER BY conrelid::regclass::text, conname
"""
# Columns that Citus fills on the coordinator and names in the INSERT it sends a shard
# (identity values and defaults), where chatstore_app may insert into the table but not
# into them: the shard checks the column privileges of the statement it receives.
_DEFAULTED_COLUMNS: Final[LiteralString] = """
SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = ANY (%(tables)s::regclass[])
  AND (a.attidentity <> '' OR a.atthasdef)
  AND has_any_column_privilege(%(role)s, c.oid, 'INSERT')
  AND NOT has_column_privilege(%(role)s, c.oid, a.attnum, 'INSERT')
GROUP BY c.relname
ORDER BY c.relname
"""
# The triggers that are on: while Citus copies existing rows into the shards it inserts
# them, and messages_number would number every copied message again (and count it twice).
_ENABLED_TRIGGERS: Final[LiteralString] = """
SELECT tgrelid::regclass::text, tgname
FROM pg_trigger
WHERE tgrelid = ANY (%s::regclass[]) AND NOT tgisinternal AND tgenabled <> 'D'
ORDER BY 1, 2
"""
_CREATE_REFERENCE: Final[LiteralString] = "SELECT create_reference_table(%s)"
_CREATE_DISTRIBUTED: Final[LiteralString] = (
    "SELECT create_distributed_table(%s, %s, shard_count => %s)"
)
_CREATE_COLOCATED: Final[LiteralString] = (
    "SELECT create_distributed_table(%s, %s, colocate_with => %s)"
)
_SHARDS: Final[LiteralString] = """
SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = %s::regclass
"""


def distribute(dsn: str, *, shard_count: int | None = None) -> list[str]:
    """Distribute the database named by ``dsn`` (a Citus coordinator's, fully migrated).

    Returns what it did, one line per step; an empty list when the database was already
    distributed. ``shard_count`` sets the number of shards of the distributed tables
    (default: the cluster's ``citus.shard_count``, 32 unless configured).

    Raises :class:`~chatstore.errors.NotDistributable`, having changed nothing, when the
    server has no Citus, is not the coordinator, has pending migrations, or holds the
    tables in some other Citus layout.
    """
    if shard_count is not None and (
        isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1
    ):
        raise ValueError("shard_count must be a positive integer")
    with psycopg.connect(dsn, autocommit=True) as conn:
        _require_coordinator(conn)
    pending = [s.id for s in migrations.status(dsn) if not s.applied]
    if pending:
        raise NotDistributable(
            f"{len(pending)} migration(s) pending ({pending[0]} first): "
            "run `chatstore migrate` before distributing"
        )
    with psycopg.connect(dsn) as conn:
        if _distributed(conn):
            return []
        done = _distribute(conn, shard_count)
        conn.commit()
    return done


def _require_coordinator(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(_CITUS).fetchone()
    if row is None or row[0] is None:
        raise NotDistributable(
            "this server has no Citus extension (CREATE EXTENSION citus on every node, "
            "with the workers added): nothing to distribute on plain PostgreSQL"
        )
    coordinator = conn.execute(_IS_COORDINATOR).fetchone()
    if coordinator is None or not coordinator[0]:
        raise NotDistributable(
            "this node is not a Citus coordinator: distribute through the coordinator"
        )


def _distributed(conn: psycopg.Connection[Any]) -> bool:
    """True when the tables are already laid out as wanted; False when none is
    known to Citus; NotDistributable for anything in between."""
    tables = [REFERENCE, *DISTRIBUTED]
    state = {
        name: (method, model, column, group)
        for name, method, model, column, group in conn.execute(_STATE, [tables])
    }
    if not state:
        return False
    groups = {state[t][3] for t in DISTRIBUTED if t in state}
    wanted = (
        state.keys() == set(tables)
        and state[REFERENCE][:2] == ("n", "t")
        and all(state[t][0] == "h" and state[t][2] == COLUMN for t in DISTRIBUTED)
        and len(groups) == 1
    )
    if not wanted:
        raise NotDistributable(
            f"the tables are partly or otherwise known to Citus ({state}): "
            f"expected {REFERENCE} as a reference table and {', '.join(DISTRIBUTED)} "
            f"distributed by {COLUMN} and co-located; undo that layout first"
        )
    return True


def _distribute(conn: psycopg.Connection[Any], shard_count: int | None) -> list[str]:
    done = []
    # For this transaction, and for every later session of this database (ALTER
    # DATABASE propagates to the workers).
    conn.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    for name, value in SETTINGS.items():
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(name), sql.Literal(value)
            )
        )
        done.append(f"database {conn.info.dbname}: {name} = {value}")
    # The foreign keys to the reference table forbid parallel shard commands.
    conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    # A table that references users would become a Citus local table the moment users
    # is a reference table, and such a table with an identity column cannot be
    # distributed any more: the foreign keys go first and come back at the end.
    keys = conn.execute(_FOREIGN_KEYS, [list(DISTRIBUTED)]).fetchall()
    for table, name, _ in keys:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    # Rows already there are copied as they are: their numbers and counters are right.
    triggers = conn.execute(_ENABLED_TRIGGERS, [list(DISTRIBUTED)]).fetchall()
    for table, name in triggers:
        conn.execute(_trigger("DISABLE", table, name))
    conn.execute(_CREATE_REFERENCE, [REFERENCE])
    done.append(f"{REFERENCE}: reference table")
    anchor, *colocated = DISTRIBUTED
    conn.execute(_CREATE_DISTRIBUTED, [anchor, COLUMN, shard_count])
    shards = conn.execute(_SHARDS, [anchor]).fetchone()
    done.append(f"{anchor}: distributed by {COLUMN} ({shards[0] if shards else '?'} shards)")
    for table in colocated:
        conn.execute(_CREATE_COLOCATED, [table, COLUMN, anchor])
        done.append(f"{table}: distributed by {COLUMN}, co-located with {anchor}")
    for table, name in triggers:  # ALTER TABLE on a distributed table reaches its shards
        conn.execute(_trigger("ENABLE", table, name))
    for table, name, definition in keys:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table),
                sql.Identifier(name),
                # pg_get_constraintdef's own text: the migrations' definition, verbatim.
                sql.SQL(cast(LiteralString, definition)),
            )
        )
        done.append(f"{table}: foreign key {name} re-created")
    defaulted = conn.execute(
        _DEFAULTED_COLUMNS, {"tables": [REFERENCE, *DISTRIBUTED], "role": APP_ROLE}
    ).fetchall()
    for table, columns in defaulted:
        conn.execute(
            sql.SQL("GRANT INSERT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(table),
                sql.Identifier(APP_ROLE),
            )
        )
        done.append(f"{table}: {APP_ROLE} may insert {', '.join(columns)} (Citus sends them)")
    return done


def _trigger(action: LiteralString, table: str, name: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} " + action + " TRIGGER {}").format(
        sql.Identifier(table), sql.Identifier(name)
    )


__all__ = ["COLUMN", "DISTRIBUTED", "REFERENCE", "SETTINGS", "distribute"]
