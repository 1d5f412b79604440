"""The docs name tests that exist: every test docs/guarantees.md lists is defined in the
file its row or section names, so the page cannot rot as tests move or are renamed."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARANTEES = ROOT / "docs" / "guarantees.md"

_FILE = re.compile(r"`(tests/[\w/]+\.py)`")
_TEST = re.compile(r"`(test_\w+)(?:\[[^`]*\])?`")


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """The test functions ``path`` defines, at module level or in a ``Test*`` class."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        bodies = [node]
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            bodies = list(node.body)
        names.update(
            n.name
            for n in bodies
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")
        )
    return frozenset(names)


def listed_tests(markdown: str) -> list[tuple[int, str, str | None]]:
    """``(line, test name, file)`` for every backticked test name in a table row: the
    file named in the row itself, else the one in the heading of its section, else None.
    Parameter ids (``name[sync]``, a lone ``[async]``) are not part of the name."""
    found: list[tuple[int, str, str | None]] = []
    section: str | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("#"):
            heading = _FILE.search(line)
            section = heading.group(1) if heading else None
        elif line.startswith("|"):
            in_row = _FILE.search(line)
            file = in_row.group(1) if in_row else section
            found.extend((number, name, file) for name in _TEST.findall(line))
    return found


def test_docs_every_test_in_guarantees_exists_in_the_file_it_is_listed_under() -> None:
    listed = listed_tests(GUARANTEES.read_text(encoding="utf-8"))
    assert len(listed) >= 30, "the parser found too few tests: has the page's layout changed?"
    wrong = []
    for line, name, file in listed:
        if file is None:
            wrong.append(f"line {line}: {name} is under no file")
        elif not (ROOT / file).is_file():
            wrong.append(f"line {line}: {file} does not exist")
        elif name not in defined_tests(ROOT / file):
            wrong.append(f"line {line}: {name} is not in {file}")
    assert wrong == []


def test_docs_the_guarantees_parser_reads_rows_sections_and_parameter_ids() -> None:
    page = (
        "## A (`tests/a.py`)\n"
        "| promise | test |\n"
        "| --- | --- |\n"
        "| p | `test_one[sync]`, `[async]` |\n"
        "| q | `test_two` (`tests/b.py`) |\n"
        "## B\n"
        "| r | `test_three[...]`, not `chatstore.pool` |\n"
    )
    assert listed_tests(page) == [
        (4, "test_one", "tests/a.py"),
        (5, "test_two", "tests/b.py"),
        (7, "test_three", None),
    ]
