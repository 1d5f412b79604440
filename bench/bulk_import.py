"""Peak memory and speed of importing 100k messages through ``append_messages``.

Each importer runs in a fresh process: the growth of its peak resident set size over
the import is what the import itself cost in memory. Messages are produced lazily in
batches, as an importer reading an export file would; the floor reference writes the
same batches with COPY.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from bench import replenish
from bench.content import TextSource
from bench.fixtures import WRITER_USER

TOTAL = 100_000
BATCH = 1_000


def _batches() -> Iterator[list[tuple[str, str]]]:
    text = TextSource(seed=11)
    for start in range(0, TOTAL, BATCH):
        yield [(role, text.text(role)) for role in
               ("user" if (start + i) % 2 == 0 else "assistant" for i in range(BATCH))]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(dsn: str, importer: str) -> dict[str, Any]:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    with psycopg.connect(dsn, autocommit=True) as conn:
        cid = replenish.chatstore_conversation(conn, WRITER_USER, 0)
        if importer == "chatstore":
            from bench.contenders.chatstore_sync import new_messages
            from chatstore import queries as q

            def write(batch: list[tuple[str, str]]) -> None:
                q.append_messages(conn, user_id=WRITER_USER, conversation_id=cid,
                                  messages=new_messages(batch))
        else:
            def write(batch: list[tuple[str, str]]) -> None:
                with conn.cursor().copy(
                        "COPY messages (conversation_id, user_id, role, content) FROM STDIN"
                ) as copy:
                    for role, content in batch:
                        copy.write_row((cid, WRITER_USER, role, content))
        before = _peak_rss_mib()
        started = time.perf_counter()
        for batch in _batches():
            write(batch)
        seconds = time.perf_counter() - started
        growth = _peak_rss_mib() - before
        conn.execute("DELETE FROM conversations WHERE user_id = %s AND id = %s",
                     (WRITER_USER, cid))
    return {"seconds": seconds, "rate": TOTAL / seconds, "rss_growth_mib": growth,
            "baseline_rss_mib": before}


def run(dsn: str, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    importers: dict[str, Any] = {}
    for importer in ("floor-copy", "chatstore"):
        with ctx.Pool(1) as pool:
            try:
                importers[importer] = pool.apply(measure, (dsn, importer))
            except Exception as exc:
                importers[importer] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        log(f"  bulk import {importer}: {importers[importer]}")
    return {
        "method": (f"{TOTAL:,} messages into one conversation in batches of {BATCH:,} "
                   "(one call per batch, autocommit), in a fresh process per importer; "
                   "peak RSS growth = ru_maxrss after minus before the import."),
        "importers": importers,
    }
