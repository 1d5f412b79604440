"""Create every table the contenders use: chatstore's migrations and the peers' own."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg import sql

from bench.fixtures import AGENTS_MESSAGES_TABLE, AGENTS_SESSIONS_TABLE, LANGCHAIN_TABLE
from bench.sqlalchemy_urls import async_engine


def apply_chatstore_migrations(dsn: str) -> list[str]:
    from chatstore import migrations

    return migrations.apply(dsn)


def create_langchain_table(dsn: str) -> None:
    from langchain_postgres import PostgresChatMessageHistory

    with psycopg.connect(dsn) as conn:
        PostgresChatMessageHistory.create_tables(conn, LANGCHAIN_TABLE)


def create_sqlmodel_tables(dsn: str) -> None:
    """Seed 002's own tables and indexes, in the schema ``sqlmodel``."""
    from bench import seed_schema

    with psycopg.connect(dsn) as conn:
        seed_schema.create(conn)


def create_agents_tables(dsn: str) -> None:
    """The Agents SDK creates its tables itself (``create_tables=True``)."""
    from agents.extensions.memory import SQLAlchemySession

    async def create() -> None:
        engine = async_engine(dsn)
        session = SQLAlchemySession(
            "schema",
            engine=engine,
            create_tables=True,
            sessions_table=AGENTS_SESSIONS_TABLE,
            messages_table=AGENTS_MESSAGES_TABLE,
        )
        await session.get_items(limit=1)
        await engine.dispose()

    asyncio.run(create())


BENCH_TABLES = (
    "users",
    "conversations",
    "messages",
    LANGCHAIN_TABLE,
    AGENTS_SESSIONS_TABLE,
    AGENTS_MESSAGES_TABLE,
)
SQLMODEL_SCHEMA = "sqlmodel"  # bench.seed_schema.SCHEMA (that module needs sqlmodel)
SQLMODEL_TABLES = ("users", "conversations", "messages")


def pause_autovacuum(dsn: str) -> None:
    """Turn autovacuum off on the measured tables of the throwaway bench database.

    The loader vacuums and analyzes after every load instead; an autovacuum of a
    10M-row table starting in the middle of one operation's rounds would otherwise
    land on that operation alone.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in BENCH_TABLES:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(table)
                )
            )
        for table in SQLMODEL_TABLES:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(SQLMODEL_SCHEMA, table)
                )
            )


def create_all(dsn: str) -> dict[str, str]:
    """Create the tables; return, per peer, 'ok' or why it is unavailable."""
    apply_chatstore_migrations(dsn)
    status: dict[str, str] = {}
    for peer, create in (
        ("sqlmodel", create_sqlmodel_tables),
        ("langchain", create_langchain_table),
        ("agents", create_agents_tables),
    ):
        try:
            create(dsn)
            status[peer] = "ok"
        except ImportError as exc:
            status[peer] = f"not installed: {exc}"
    pause_autovacuum(dsn)
    return status
