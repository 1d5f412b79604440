"""One module per peer; each names a factory ``module:function -> Contender``.

The names are the keys used in the results and the report, in report order. A peer
measured two ways has two names (``-seed-style`` / ``-competent``, the Agents SDK by
driver and by how its session objects live), each labelled in the report.
"""

from __future__ import annotations

import importlib

from bench.contenders.base import Contender

MODULES: dict[str, str] = {
    "floor": "bench.contenders.floor:make",
    "chatstore": "bench.contenders.chatstore_sync:make",
    "chatstore-async": "bench.contenders.chatstore_async:make",
    "chatstore-sql": "bench.contenders.chatstore_sql:make",
    "sqlmodel-seed-style": "bench.contenders.sqlmodel_orm:make",
    "sqlmodel-competent": "bench.contenders.sqlmodel_orm:make_competent",
    "langchain": "bench.contenders.langchain_history:make",
    "agents-per-call": "bench.contenders.agents_session:make_per_call",
    "agents-psycopg": "bench.contenders.agents_session:make_psycopg",
    "agents-asyncpg": "bench.contenders.agents_session:make_asyncpg",
}


def make(name: str) -> Contender:
    module_name, factory = MODULES[name].split(":")
    module = importlib.import_module(module_name)
    contender: Contender = getattr(module, factory)()
    return contender
