"""SQLModel ORM on seed 002's own schema and indexes (bench/seed_schema.py).

Two contenders, on the same tables and data (the loader's copy of chatstore's
conversations):

- ``sqlmodel-seed-style``: the seed's quickstart code. A session per request;
  ``session.get`` of the conversation, ``session.add`` per message, ``updated_at`` set by
  hand, ``commit``, then ``refresh`` of every message (the default
  ``expire_on_commit=True``); history ordered by ``created_at``; OFFSET for later listing
  pages; ``session.get`` + ``session.delete`` for delete (with the seed's relationship
  made ``cascade_delete=True``, SQLModel's tutorial fix without which that delete fails:
  the ORM loads the 1,000 messages and deletes them itself).
- ``sqlmodel-competent``: the same models as a competent SQLAlchemy user writes the
  calls. ``expire_on_commit=False``, no ``session.get`` and no ``refresh`` (the ids come
  back from ``INSERT ... RETURNING`` during the flush); the seed's schema has no trigger,
  so ``updated_at`` is set by the database's clock in one ``UPDATE`` inside the same
  transaction (what chatstore's trigger does too); keyset paging for the listing; one
  ``DELETE`` statement, the database cascading the messages.

History: the seed-style row filters the messages on their own ``user_id`` (the owner)
and orders by ``created_at``; on the long conversation the planner misjudges that filter
and may sort every row instead of reading ``idx_messages_conversation_id_created_at``
backwards. The competent row checks the owner on the conversation (``EXISTS``) and
reads that index backwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, delete, exists, func, tuple_, update
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, SPECIAL_USER, WRITER_USER, Fixtures
from bench.seed_schema import Conversation, Message, utcnow
from bench.sqlalchemy_urls import engine as make_engine


class SQLModelSeedStyle:
    is_async = False
    description = (
        "SQLModel / SQLAlchemy 2 ORM on psycopg 3, on seed 002's own schema and indexes,"
        " the seed's quickstart code"
    )

    def __init__(self) -> None:
        self.notes = [
            "append: session.get, add, updated_at set by hand, commit, refresh each message",
            "history ordered by created_at on the seed's (conversation_id, created_at) index",
            "listing page 50 with OFFSET 980, as the seed's users write it",
            "delete: session.get + session.delete + commit; the seed's relationship needs"
            " cascade_delete=True for that to work (SQLModel's tutorial fix), so the ORM"
            " loads and deletes the 1,000 messages itself",
        ]

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._engine: Engine = make_engine(dsn)
        self._raw = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.sqlmodel_conversation(self._raw, WRITER_USER, 50)
        self._doomed: list[int] = []

    def _session(self) -> Session:
        return Session(self._engine)

    def _append(self, texts: list[tuple[str, str]]) -> list[Message]:
        with self._session() as session:
            conversation = session.get(Conversation, self._target)
            assert conversation is not None
            messages = [
                Message(
                    conversation_id=self._target, user_id=WRITER_USER, role=role, content=content
                )
                for role, content in texts
            ]
            for message in messages:
                session.add(message)
            conversation.updated_at = utcnow()
            session.add(conversation)
            session.commit()
            for message in messages:
                session.refresh(message)
            return messages

    def _history(self, cid: int, limit: int | None) -> list[Message]:
        with self._session() as session:
            stmt = select(Message).where(
                Message.conversation_id == cid, Message.user_id == SPECIAL_USER
            )
            if limit is None:
                return list(session.exec(stmt.order_by(Message.created_at)).all())
            rows = list(session.exec(stmt.order_by(Message.created_at.desc()).limit(limit)).all())  # type: ignore[attr-defined]
            rows.reverse()
            return rows

    def _listing(self, page: int) -> list[Conversation]:
        with self._session() as session:
            stmt = (
                select(Conversation)
                .where(Conversation.user_id == HEAVY_USER)
                .order_by(Conversation.updated_at.desc())  # type: ignore[attr-defined]
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
            return list(session.exec(stmt).all())

    def _list_first(self) -> list[Conversation]:
        return self._listing(1)

    def _list_page(self) -> list[Conversation]:
        return self._listing(PAGE_NUMBER)

    def _delete(self) -> None:
        with self._session() as session:
            conversation = session.get(Conversation, self._doomed.pop())
            assert conversation is not None
            session.delete(conversation)
            session.commit()

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx

        def new_doomed() -> None:
            self._doomed.append(replenish.sqlmodel_conversation(self._raw, WRITER_USER, 1000))

        pair = [("user", USER_TEXT), ("assistant", ASSISTANT_TEXT)]
        return {
            "append_one": Operation(lambda: self._append([("user", USER_TEXT)])),
            "append_pair": Operation(lambda: self._append(pair)),
            "last50_of_50": Operation(lambda: self._history(fx.conv_50, 50)),
            "last50_of_10000": Operation(lambda: self._history(fx.conv_10000, 50)),
            "whole_1000": Operation(lambda: self._history(fx.conv_1000, None)),
            "list_recent_20": Operation(self._list_first),
            "list_page_50": Operation(self._list_page),
            "delete_1000": Operation(self._delete, prepare=new_doomed),
        }

    def close(self) -> Any:
        self._raw.close()
        self._engine.dispose()


class SQLModelCompetent(SQLModelSeedStyle):
    description = (
        "SQLModel / SQLAlchemy 2 ORM on psycopg 3, on seed 002's own schema and indexes,"
        " written as a competent SQLAlchemy user writes it"
    )

    def __init__(self) -> None:
        self.notes = [
            "append: expire_on_commit=False, add_all, one UPDATE setting updated_at to the"
            " database's now() (the seed's schema has no trigger), commit; no session.get,"
            " no refresh",
            "history: the owner checked on the conversation (EXISTS), the messages read"
            " on the seed's (conversation_id, created_at) index",
            "listing with keyset paging on (updated_at, id); the seed's indexes have no"
            " (user_id, updated_at), so each page still reads the user's conversations",
            "delete: one DELETE statement, the database cascading the messages",
        ]

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        super().setup(dsn, fixtures)
        self._sessions = sessionmaker(self._engine, class_=Session, expire_on_commit=False)
        # The keyset cursor of page PAGE_NUMBER: the last row of the page before it
        # (untimed, as chatstore's contender walks its pages in setup).
        row = self._raw.execute(
            "SELECT updated_at, id FROM sqlmodel.conversations WHERE user_id = %s"
            " ORDER BY updated_at DESC, id DESC OFFSET %s LIMIT 1",
            (HEAVY_USER, (PAGE_NUMBER - 1) * PAGE_SIZE - 1),
        ).fetchone()
        assert row is not None
        self._cursor = (row[0].replace(tzinfo=UTC), row[1])  # the server runs in UTC

    def _session(self) -> Session:
        return self._sessions()

    def _append(self, texts: list[tuple[str, str]]) -> list[Message]:
        with self._session() as session:
            messages = [
                Message(
                    conversation_id=self._target, user_id=WRITER_USER, role=role, content=content
                )
                for role, content in texts
            ]
            session.add_all(messages)
            session.execute(
                update(Conversation)
                .where(Conversation.id == self._target)  # type: ignore[arg-type]
                .values(updated_at=func.timezone("UTC", func.now())),
                execution_options={"synchronize_session": False},
            )
            session.commit()
            return messages

    def _history(self, cid: int, limit: int | None) -> list[Message]:
        # The owner is checked on the conversation's row (an uncorrelated EXISTS, run
        # once), so the messages are read on the seed's (conversation_id, created_at)
        # index alone. Filtering messages.user_id instead, as the seed-style row does,
        # lets the planner misjudge how many rows match and sort the whole conversation.
        owned = exists().where(Conversation.id == cid, Conversation.user_id == SPECIAL_USER)
        with self._session() as session:
            stmt = select(Message).where(Message.conversation_id == cid, owned)
            if limit is None:
                return list(session.exec(stmt.order_by(Message.created_at)).all())
            rows = list(session.exec(stmt.order_by(Message.created_at.desc()).limit(limit)).all())  # type: ignore[attr-defined]
            rows.reverse()
            return rows

    def _keyset(self, after: tuple[datetime, int] | None) -> list[Conversation]:
        with self._session() as session:
            stmt = select(Conversation).where(Conversation.user_id == HEAVY_USER)
            if after is not None:
                stmt = stmt.where(tuple_(Conversation.updated_at, Conversation.id) < after)
            stmt = stmt.order_by(
                Conversation.updated_at.desc(),  # type: ignore[attr-defined]
                Conversation.id.desc(),  # type: ignore[union-attr]
            ).limit(PAGE_SIZE)
            return list(session.exec(stmt).all())

    def _list_first(self) -> list[Conversation]:
        return self._keyset(None)

    def _list_page(self) -> list[Conversation]:
        return self._keyset(self._cursor)

    def _delete(self) -> None:
        with self._session() as session:
            session.execute(
                delete(Conversation).where(
                    Conversation.id == self._doomed.pop(),  # type: ignore[arg-type]
                    Conversation.user_id == WRITER_USER,  # type: ignore[arg-type]
                )
            )
            session.commit()


def make() -> SQLModelSeedStyle:
    return SQLModelSeedStyle()


def make_competent() -> SQLModelCompetent:
    return SQLModelCompetent()
