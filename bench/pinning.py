"""CPU placement: client and its server backend on one vCPU (see BENCHMARKING.md).

Waking a process on the other vCPU costs 100-200 us per round trip here, which makes
unpinned figures bimodal. The measuring process pins itself; the orchestrator pins
the backends, found by ``application_name``, before every block it runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

CLIENT_CPU = 0
ORCHESTRATOR_CPU = 1


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin_self(cpu: int | None) -> None:
    if cpu is not None and cpu_count() > 1:
        os.sched_setaffinity(0, {cpu})


def _is_postgres(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmd


class BackendPinner:
    """Pins the backends of each contender's connections to one CPU."""

    def __init__(
        self, admin_conn: psycopg.Connection[tuple[object, ...]] | None, cpu: int | None
    ) -> None:
        self._conn = admin_conn
        self._cpu = cpu
        self._pinned: set[int] = set()

    def pin(self, application_name: str) -> int:
        """Pin every backend with this application name; return how many are pinned."""
        if self._conn is None or self._cpu is None:
            return 0
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
        count = 0
        for (pid,) in rows:
            assert isinstance(pid, int)
            if pid not in self._pinned and _is_postgres(pid):
                try:
                    os.sched_setaffinity(pid, {self._cpu})
                except OSError:
                    continue
                self._pinned.add(pid)
            count += pid in self._pinned
        return count
