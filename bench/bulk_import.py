"""Peak memory and speed of importing 100k messages through ``append_messages``.

Each importer runs in a fresh process: the growth of its peak resident set size over
the import is what the import itself cost in memory. Messages are produced lazily in
batches, as an importer reading an export file would; the floor reference writes the
same batches with COPY.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
        yield [
            (role, text.text(role))
            for role in ("user" if (start + i) % 2 == 0 else "assistant" for i in range(BATCH))
        ]


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


class PeakRSS:
    """Samples this process's resident set every 2 ms in a thread; keeps the maximum."""

    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def measure(dsn: str, importer: str) -> dict[str, Any]:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    with psycopg.connect(dsn, autocommit=True) as conn:
        cid = replenish.chatstore_conversation(conn, WRITER_USER, 0)
        if importer == "chatstore":
            from bench.contenders.chatstore_sync import new_messages
            from chatstore import queries as q

            def write(batch: list[tuple[str, str]]) -> None:
                q.append_messages(
                    conn, user_id=WRITER_USER, conversation_id=cid, messages=new_messages(batch)
                )
        else:

            def write(batch: list[tuple[str, str]]) -> None:
                with conn.cursor().copy(
                    "COPY messages (conversation_id, user_id, role, content) FROM STDIN"
                ) as copy:
                    for role, content in batch:
                        copy.write_row((cid, WRITER_USER, role, content))

        gc.collect()
        before = _rss_mib()
        with PeakRSS() as peak:
            started = time.perf_counter()
            for batch in _batches():
                write(batch)
            seconds = time.perf_counter() - started
        growth = peak.peak - before
        conn.execute("DELETE FROM conversations WHERE user_id = %s AND id = %s", (WRITER_USER, cid))
    return {
        "seconds": seconds,
        "rate": TOTAL / seconds,
        "rss_growth_mib": growth,
        "baseline_rss_mib": before,
    }


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
        "method": (
            f"{TOTAL:,} messages into one conversation in batches of {BATCH:,} "
            "(one call per batch, autocommit), in a fresh process per importer; "
            "peak RSS growth = highest resident set sampled every 2 ms during the import "
            "minus the resident set just before it."
        ),
        "importers": importers,
    }
