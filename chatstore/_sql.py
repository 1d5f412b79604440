"""The named queries of ``sql/queries/*.sql``, loaded once at import.

Each file holds blocks in procrastinate's style::

    -- get_user --
    -- One user by id.
    SELECT id, email, name, created_at FROM users WHERE id = %(user_id)s;

The text before the first block is the file's own comment. ``chatstore.aio`` and
``chatstore.queries`` call the statements by name; a test runs ``EXPLAIN`` on each
against the migrated schema and checks that names used and names defined match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import LiteralString

from chatstore.migrations import sql_dir

_HEADER = re.compile(r"^-- ([a-z][a-z0-9_]*) --[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: LiteralString
    path: Path


def queries_dir() -> Path:
    return sql_dir() / "queries"


def parse(text: str, path: Path) -> list[NamedQuery]:
    """The blocks of one file, in order."""
    parts = _HEADER.split(text)
    found: list[NamedQuery] = []
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = body.strip().splitlines()
        description = []
        while lines and lines[0].startswith("--"):
            description.append(lines.pop(0).removeprefix("--").strip())
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if not description or not sql:
            raise ValueError(f"{path}: query {name!r} needs a description line and SQL")
        # Read from the package's own files, never from input: as safe as a literal.
        # (mypy treats LiteralString as str; a type checker that does not would need a cast.)
        found.append(NamedQuery(name, " ".join(description), sql, path))
    return found


def load(folder: Path | None = None) -> dict[str, NamedQuery]:
    """Every named query of every ``*.sql`` file in ``folder``; a name may appear once."""
    folder = folder or queries_dir()
    queries: dict[str, NamedQuery] = {}
    for path in sorted(folder.glob("*.sql")):
        for query in parse(path.read_text(encoding="utf-8"), path):
            if query.name in queries:
                raise ValueError(f"query {query.name!r} defined twice ({path})")
            queries[query.name] = query
    return queries


NAMED: Mapping[str, NamedQuery] = MappingProxyType(load())
QUERIES: Mapping[str, LiteralString] = MappingProxyType({n: q.sql for n, q in NAMED.items()})
