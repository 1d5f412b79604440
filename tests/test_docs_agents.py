"""docs/agents.md runs as written: each Python block, in a fresh interpreter on this
test's migrated database, prints what its comments say it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "agents.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def expected_output(block: str) -> list[str]:
    """The comments that follow a print: on its line (``print(x)  # out``) and on the
    comment-only lines right after it."""
    lines: list[str] = []
    after_print = False
    for line in block.splitlines():
        code, _, comment = line.partition("  # ")
        stripped = line.strip()
        if "print(" in code:
            after_print = True
            if comment:
                lines.append(comment.strip())
        elif after_print and stripped.startswith("# "):
            lines.append(stripped[2:])
        else:
            after_print = False
    return lines


def test_docs_agents_has_a_block_per_framework() -> None:
    assert len(BLOCKS) == 2
    assert all(expected_output(block) for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=["agents_sdk", "pydantic_ai"])
def test_docs_agents_block_runs_and_prints_what_it_says(block: str, db_dsn: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", block],
        env={**os.environ, "CHATSTORE_DSN": db_dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected_output(block)
