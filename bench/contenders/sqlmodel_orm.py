"""SQLModel ORM, written the way the seed quickstart writes it.

A session per request; ``session.add`` / ``commit`` / ``refresh``;
``select(...).order_by(Message.created_at)`` for history, ``updated_at`` set by hand on
append, OFFSET for later listing pages, ``session.delete(conversation)`` for delete (the
database cascades the messages). The models map chatstore's tables, so the data is
the same; the seed's models are kept except for the composite keys this schema has.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Column, Engine, Identity, Text
from sqlmodel import Field, Session, SQLModel, select

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, SPECIAL_USER, WRITER_USER, Fixtures
from bench.sqlalchemy_urls import engine as make_engine


def _now() -> datetime:
    return datetime.now(UTC)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    user_id: str = Field(primary_key=True)
    title: str | None = None
    created_at: datetime = Field(default_factory=_now, nullable=False)
    updated_at: datetime = Field(default_factory=_now, nullable=False)


class Message(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    conversation_id: int = Field(primary_key=True)
    user_id: str = Field(nullable=False)
    role: str = Field(nullable=False)
    content: str = Field(nullable=False, sa_type=Text)
    created_at: datetime = Field(default_factory=_now, nullable=False)


class SQLModelORM:
    is_async = False
    description = "SQLModel 0.0 / SQLAlchemy 2 ORM on psycopg 3, seed-quickstart style"

    def __init__(self) -> None:
        self.notes = [
            "history ordered by created_at as the seed writes it (no index leads with it)",
            "listing page 50 with OFFSET 980, as the seed's users would write it",
        ]

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._engine: Engine = make_engine(dsn)
        self._raw = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.chatstore_conversation(self._raw, WRITER_USER, 50)
        self._doomed: list[int] = []

    def _append(self, texts: list[tuple[str, str]]) -> list[Message]:
        with Session(self._engine) as session:
            conversation = session.get(Conversation, {"user_id": WRITER_USER, "id": self._target})
            assert conversation is not None
            messages = [
                Message(
                    conversation_id=self._target, user_id=WRITER_USER, role=role, content=content
                )
                for role, content in texts
            ]
            for message in messages:
                session.add(message)
            conversation.updated_at = _now()
            session.add(conversation)
            session.commit()
            for message in messages:
                session.refresh(message)
            return messages

    def _history(self, cid: int, limit: int | None) -> list[Message]:
        with Session(self._engine) as session:
            stmt = select(Message).where(
                Message.conversation_id == cid, Message.user_id == SPECIAL_USER
            )
            if limit is None:
                return list(session.exec(stmt.order_by(Message.created_at)).all())
            rows = list(session.exec(stmt.order_by(Message.created_at.desc()).limit(limit)).all())  # type: ignore[attr-defined]
            rows.reverse()
            return rows

    def _listing(self, page: int) -> list[Conversation]:
        with Session(self._engine) as session:
            stmt = (
                select(Conversation)
                .where(Conversation.user_id == HEAVY_USER)
                .order_by(Conversation.updated_at.desc())  # type: ignore[attr-defined]
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
            return list(session.exec(stmt).all())

    def _delete(self) -> None:
        with Session(self._engine) as session:
            conversation = session.get(
                Conversation, {"user_id": WRITER_USER, "id": self._doomed.pop()}
            )
            assert conversation is not None
            session.delete(conversation)
            session.commit()

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx

        def new_doomed() -> None:
            self._doomed.append(replenish.chatstore_conversation(self._raw, WRITER_USER, 1000))

        pair = [("user", USER_TEXT), ("assistant", ASSISTANT_TEXT)]
        ops: dict[str, Operation | Unsupported] = {
            "append_one": Operation(lambda: self._append([("user", USER_TEXT)])),
            "append_pair": Operation(lambda: self._append(pair)),
            "last50_of_50": Operation(lambda: self._history(fx.conv_50, 50)),
            "last50_of_10000": Operation(lambda: self._history(fx.conv_10000, 50)),
            "whole_1000": Operation(lambda: self._history(fx.conv_1000, None)),
            "list_recent_20": Operation(lambda: self._listing(1)),
            "list_page_50": Operation(lambda: self._listing(PAGE_NUMBER)),
            "delete_1000": Operation(self._delete, prepare=new_doomed),
        }
        return ops

    def close(self) -> Any:
        self._raw.close()
        self._engine.dispose()


def make() -> SQLModelORM:
    return SQLModelORM()
