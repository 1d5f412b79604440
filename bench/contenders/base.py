"""What a contender provides: setup, and a callable per operation it supports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bench.fixtures import Fixtures

OPERATIONS: dict[str, str] = {
    "append_one": "append one message",
    "append_pair": "append a user+assistant pair",
    "last50_of_50": "read last 50 of a 50-message conversation",
    "last50_of_10000": "read last 50 of a 10,000-message conversation",
    "whole_1000": "read a whole 1,000-message conversation",
    "list_recent_20": "list a user's 20 most recent conversations",
    "list_page_50": "page 50 of that listing (rows 981-1000)",
    "delete_1000": "delete a 1,000-message conversation",
}

USER_TEXT = "How do I keep the last fifty messages of a long chat fast to read?"
ASSISTANT_TEXT = (
    "Keep an index that leads with the conversation and ends with the message "
    "id, read it backwards with LIMIT 50, and reverse the rows in the client. "
) * 6


@dataclass
class Operation:
    """``run`` is timed; ``prepare`` (untimed) runs before each iteration.

    For an async contender both return awaitables.
    """

    run: Callable[[], Any]
    prepare: Callable[[], Any] | None = None


@dataclass
class Unsupported:
    """An operation the contender's API cannot express, and why."""

    reason: str


class Contender(Protocol):
    is_async: bool
    description: str
    notes: list[str]

    def setup(self, dsn: str, fixtures: Fixtures) -> Any:
        """Connect and create the append target; a coroutine when ``is_async``."""

    def operations(self) -> dict[str, Operation | Unsupported]: ...

    def close(self) -> Any: ...
