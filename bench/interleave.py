"""Drive one process per contender through each operation in interleaved small blocks.

For every operation: a warm-up block per contender (also used to size the run), then
rounds in which each contender runs one small block, in an order rotated each round,
so slow drift of the machine lands on every contender alike. Only one contender runs
at a time; the orchestrator waits on the pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import worker
from bench.pinning import BackendPinner
from bench.server import with_database
from bench.stats import summary


@dataclass(frozen=True)
class Budget:
    """How long to measure each operation for each contender."""

    seconds_per_op: float = 0.6
    warmup: int = 8
    min_iterations: int = 30
    max_iterations: int = 300
    max_seconds_per_op: float = 4.0  # slow contenders get fewer iterations, at least 10
    block: int = 10
    max_iterations_by_op: dict[str, int] = field(default_factory=lambda: {"delete_1000": 40})


@dataclass
class WorkerHandle:
    name: str
    application_name: str
    process: Any
    pipe: Connection
    info: dict[str, Any] | None = None
    unavailable: str | None = None

    def ask(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        self.pipe.send(message)
        reply: tuple[Any, ...] = self.pipe.recv()
        return reply


def start_workers(
    names: list[str], dsn: str, fixtures: dict[str, int], cpu: int | None
) -> list[WorkerHandle]:
    ctx = mp.get_context("spawn")
    handles = []
    for name in names:
        app = f"bench_{name}"
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=worker.main,
            name=app,
            daemon=True,
            args=(
                name,
                with_database(dsn, _dbname(dsn), application_name=app),
                fixtures,
                cpu,
                theirs,
            ),
        )
        process.start()
        handles.append(WorkerHandle(name, app, process, ours))
    for handle in handles:
        reply = handle.pipe.recv()
        if reply[0] == "ready":
            handle.info = reply[1]
        else:
            handle.unavailable = reply[1]
            print(f"  {handle.name}: unavailable ({handle.unavailable})", file=sys.stderr)
    return handles


def _dbname(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn)["dbname"])


def stop_workers(handles: list[WorkerHandle]) -> None:
    for handle in handles:
        if handle.unavailable is None and handle.process.is_alive():
            handle.ask(("stop",))
        handle.process.join(timeout=10)


def measure_operation(
    handles: list[WorkerHandle], op: str, budget: Budget, pinner: BackendPinner
) -> dict[str, dict[str, Any]]:
    """Median, p99 and sample count per contender; or why it has no figure."""
    results: dict[str, dict[str, Any]] = {}
    active: list[WorkerHandle] = []
    samples: dict[str, list[int]] = {}
    for h in handles:
        if h.unavailable is not None:
            results[h.name] = {"unavailable": h.unavailable}
        elif h.info and op in h.info["unsupported"]:
            results[h.name] = {"unsupported": h.info["unsupported"][op]}
        else:
            active.append(h)
    targets: dict[str, int] = {}
    cap = budget.max_iterations_by_op.get(op, budget.max_iterations)
    for h in active:
        pinner.pin(h.application_name)
        reply = h.ask(("run", op, budget.warmup))
        if reply[0] != "ok":
            results[h.name] = {"error": reply[1]}
            continue
        per_iter = statistics.median(reply[1]) / 1e9
        wanted = int(budget.seconds_per_op / max(per_iter, 1e-6))
        ceiling = max(10, int(budget.max_seconds_per_op / max(per_iter, 1e-6)))
        targets[h.name] = min(ceiling, max(budget.min_iterations, min(cap, wanted)))
        samples[h.name] = []
    running = [h for h in active if h.name in targets]
    block_medians: dict[str, dict[int, float]] = {h.name: {} for h in running}
    rounds = 0
    while True:
        pending = [h for h in running if len(samples[h.name]) < targets[h.name]]
        if not pending:
            break
        shift = rounds % len(pending)
        for h in pending[shift:] + pending[:shift]:
            pinner.pin(h.application_name)
            n = min(budget.block, targets[h.name] - len(samples[h.name]))
            reply = h.ask(("run", op, n))
            if reply[0] != "ok":
                results[h.name] = {"error": reply[1]}
                targets[h.name] = 0
                continue
            samples[h.name].extend(reply[1])
            block_medians[h.name][rounds] = statistics.median(reply[1])
        rounds += 1
    for name, values in samples.items():
        if name not in results and values:
            results[name] = summary(values)
            paired = paired_ratio(block_medians[name], block_medians.get(BASELINE, {}))
            if paired is not None:
                results[name]["paired_ratio"] = paired
    return results


BASELINE = "floor"


def paired_ratio(blocks: dict[int, float], baseline: dict[int, float]) -> float | None:
    """Median over rounds of (this block's median / the floor's block median, same round).

    A burst of load from another process lands on the blocks of one round, so this
    ratio resists noise that a ratio of overall medians can let through.
    """
    ratios = [blocks[r] / baseline[r] for r in blocks if r in baseline and baseline[r] > 0]
    return statistics.median(ratios) if ratios else None
