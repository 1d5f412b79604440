"""The named queries: each one parses and plans against the migrated schema, each one is
used by both modules and each name they use exists, and they follow the SQL rules."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from chatstore import _sql, aio, queries
from chatstore._sql import NAMED, QUERIES

ROOT = Path(__file__).resolve().parent.parent

# One sample value per parameter name used in sql/queries/.
SAMPLES: dict[str, object] = {
    "id": "ann",
    "email": "ann@example.com",
    "name": None,
    "user_id": "ann",
    "title": "a title",
    "conversation_id": 1,
    "task_id": 1,
    "before_updated_at": None,
    "before_id": None,
    "before": None,
    "after": 0,
    "limit": 20,
    "role": "user",
    "content": "hello",
    "roles": ["user", "assistant"],
    "contents": ["hello", "hi"],
    "description": None,
    "completed": [False, True],
    "count": 2,
    "items": ['{"role":"user","content":"hello"}', '{"type":"function_call"}'],
    "query": "hello",
    "cap": 1_000,
    "budget": 262_144,
    "newest": None,
    "before_rank": None,
    "before_conversation_id": None,
    "before_seq": None,
    "request_id": "req-1",
}
_PARAM = re.compile(r"%\((\w+)\)s")


def used_names(module_path: Path) -> set[str]:
    """The query names a module passes to ``_run`` and ``_records``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module_path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"_run", "_records"}
            and len(node.args) >= 2
        ):
            name = node.args[1]
            assert isinstance(name, ast.Constant), f"query name must be a literal: {name}"
            assert isinstance(name.value, str)
            names.add(name.value)
    return names


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_named_query_plans_against_the_migrated_schema(conn: psycopg.Connection, name: str) -> None:
    sql = QUERIES[name]
    params = {p: SAMPLES[p] for p in _PARAM.findall(sql)}
    plan = conn.execute("EXPLAIN (COSTS OFF) " + sql, params).fetchall()
    assert plan


@pytest.mark.parametrize("module", [aio, queries], ids=["aio", "queries"])
def test_every_named_query_is_used_and_every_used_name_exists(module: object) -> None:
    path = Path(str(getattr(module, "__file__", "")))
    used = used_names(path)
    # export.sql is chatstore.export's (tests/test_export.py checks that it runs each).
    exports = {name for name, query in NAMED.items() if query.path.name == "export.sql"}
    assert used - set(QUERIES) == set(), "functions call queries that do not exist"
    assert set(QUERIES) - used - exports == set(), "named queries that no function uses"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_named_query_follows_the_sql_rules(name: str) -> None:
    query = NAMED[name]
    sql = re.sub(r"--[^\n]*", "", query.sql)
    assert not re.search(r"\bselect\s+(\w+\.)?\*", sql, re.IGNORECASE), "SELECT *: list columns"
    assert not re.search(r"\boffset\b", sql, re.IGNORECASE), "OFFSET: use keyset pagination"
    assert not re.search(r"(?<!%)%s|\$\d", sql), "parameters are %(name)s"
    assert query.description
    assert query.path.parent == _sql.queries_dir()


def test_queries_are_one_file_per_area() -> None:
    files = {q.path.name for q in NAMED.values()}
    assert files == {
        "users.sql",
        "conversations.sql",
        "messages.sql",
        "tasks.sql",
        "agent_items.sql",
        "export.sql",
        "search.sql",
    }


def test_loader_refuses_a_duplicate_name_or_a_block_without_description(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.sql").write_text("-- q --\n-- one\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- q --\n-- two\nSELECT 2;\n")
    with pytest.raises(ValueError, match="defined twice"):
        _sql.load(tmp_path)
    (tmp_path / "b.sql").write_text("-- r --\nSELECT 2;\n")
    with pytest.raises(ValueError, match="description"):
        _sql.load(tmp_path)


def test_loader_keeps_the_sql_and_drops_header_and_semicolon(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text(
        "-- file comment\n\n-- first --\n-- Does a thing,\n-- in two lines.\n"
        "SELECT 1\nFROM x;\n\n-- second --\n-- Other.\nSELECT 2;\n"
    )
    loaded = _sql.load(tmp_path)
    assert list(loaded) == ["first", "second"]
    assert loaded["first"].sql == "SELECT 1\nFROM x"
    assert loaded["first"].description == "Does a thing, in two lines."


def test_sync_module_is_generated_from_the_async_one() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "async_to_sync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_both_modules_export_the_same_functions_with_the_same_signatures() -> None:
    import inspect

    assert aio.__all__ == queries.__all__
    for name in aio.__all__:
        a, s = inspect.signature(getattr(aio, name)), inspect.signature(getattr(queries, name))
        assert list(a.parameters) == list(s.parameters), name
        assert inspect.iscoroutinefunction(getattr(aio, name))
        assert not inspect.iscoroutinefunction(getattr(queries, name))
        params = list(a.parameters.values())
        assert params[0].name == "conn"
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
