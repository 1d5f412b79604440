"""One module per contender; each exposes ``make() -> Contender``.

The names are the keys used in the results and the report, in report order.
"""

from __future__ import annotations

import importlib

from bench.contenders.base import Contender

MODULES: dict[str, str] = {
    "floor": "bench.contenders.floor",
    "chatstore": "bench.contenders.chatstore_sync",
    "chatstore-async": "bench.contenders.chatstore_async",
    "chatstore-sql": "bench.contenders.chatstore_sql",
    "sqlmodel": "bench.contenders.sqlmodel_orm",
    "langchain": "bench.contenders.langchain_history",
    "agents": "bench.contenders.agents_session",
}


def make(name: str) -> Contender:
    module = importlib.import_module(MODULES[name])
    contender: Contender = module.make()
    return contender
