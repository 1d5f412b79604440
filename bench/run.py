"""Entry point: ``python -m bench [--full] [--scales ...] [--contenders ...]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import contenders, interleave, machine
from bench.contenders.base import OPERATIONS
from bench.loader import Loader
from bench.pinning import CLIENT_CPU, ORCHESTRATOR_CPU, BackendPinner, cpu_count, pin_self
from bench.schema import create_all
from bench.server import is_local, recreate_database, server_dsn

ROOT = Path(__file__).resolve().parent.parent
QUICK_SCALES = [100_000, 1_000_000]
FULL_SCALES = [100_000, 1_000_000, 10_000_000]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--full", action="store_true", help="add the 10M-message scale")
    p.add_argument("--scales", type=int, nargs="+", help="total messages per scale")
    p.add_argument(
        "--contenders",
        nargs="+",
        default=list(contenders.MODULES),
        choices=list(contenders.MODULES),
    )
    p.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=list(OPERATIONS))
    p.add_argument(
        "--seconds-per-op",
        type=float,
        default=0.6,
        help="measuring time per operation, contender and scale",
    )
    p.add_argument("--placement", choices=["same-cpu", "unpinned"], default="same-cpu")
    p.add_argument("--skip-concurrency", action="store_true")
    p.add_argument("--skip-bulk", action="store_true")
    p.add_argument(
        "--skip-agents",
        action="store_true",
        help="skip ChatstoreSession against the Agents SDK's SQLAlchemySession",
    )
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--chart", type=Path, default=ROOT / "docs" / "benchmarks.png")
    return p.parse_args(argv)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scales = args.scales or (FULL_SCALES if args.full else QUICK_SCALES)
    started = time.perf_counter()
    pinned = args.placement == "same-cpu" and cpu_count() > 1
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "full" if args.full else "quick",
        "placement": args.placement if pinned else "unpinned",
        "machine": machine.machine(),
        "scales": [],
    }
    with server_dsn() as admin_dsn:
        dsn = recreate_database(admin_dsn)
        results["server"] = machine.server(dsn)
        results["server"]["embedded"] = "CHATSTORE_DSN" not in os.environ
        log(f"server: {results['server']['version']}")
        results["peer_tables"] = create_all(dsn)
        pin_self(ORCHESTRATOR_CPU if pinned else None)
        with psycopg.connect(dsn, autocommit=True) as admin:
            loader = Loader(admin)
            fixtures = loader.load_special()
            pinner = BackendPinner(
                admin if pinned and is_local(dsn) else None, CLIENT_CPU if pinned else None
            )
            for scale in scales:
                report = loader.grow_to(scale)
                settle(admin)
                log(
                    f"scale {scale:,}: loaded {report.added_messages:,} messages in "
                    f"{report.seconds:.1f} s (peers' copies {report.peer_seconds:.1f} s)"
                )
                results["scales"].append(
                    measure_scale(args, dsn, fixtures.as_dict(), pinner, scale, report)
                )
        if not args.skip_concurrency:
            from bench import concurrency

            results["concurrency"] = concurrency.run(dsn, log=log)
        if not args.skip_bulk:
            from bench import bulk_import

            results["bulk_import"] = bulk_import.run(dsn, log=log)
        if not args.skip_agents:
            from bench import agents_sessions  # its own database on the same server

            results["agents_sessions"] = agents_sessions.run(
                admin_dsn, placement=args.placement, log=log
            )
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    from bench import report

    report.write(results, args.markdown, args.chart)
    log(f"done in {results['seconds']} s: {args.markdown}, {args.chart}, {args.json}")
    return 0


def settle(admin: psycopg.Connection[Any], timeout: float = 120.0) -> None:
    """Checkpoint, then wait (bounded) until no autovacuum worker is busy."""
    admin.execute("CHECKPOINT")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
        ).fetchone()
        if not row or row[0] == 0:
            return
        time.sleep(0.5)
    log("  autovacuum still busy after the wait; measuring anyway")


def measure_scale(
    args: argparse.Namespace,
    dsn: str,
    fixtures: dict[str, int],
    pinner: BackendPinner,
    scale: int,
    load: Any,
) -> dict[str, Any]:
    budget = interleave.Budget(seconds_per_op=args.seconds_per_op)
    handles = interleave.start_workers(
        args.contenders, dsn, fixtures, CLIENT_CPU if pinner is not None else None
    )
    out: dict[str, Any] = {
        "total_messages": scale,
        "load_average_before": os.getloadavg(),
        "data": machine.data_size(dsn),
        "load_seconds": round(load.seconds, 1),
        "load_added": load.added_messages,
        "peer_copy_seconds": round(load.peer_seconds, 1),
        "contenders": {h.name: h.info or {"unavailable": h.unavailable} for h in handles},
        "operations": {},
    }
    try:
        for op in args.operations:
            t0 = time.perf_counter()
            res = interleave.measure_operation(handles, op, budget, pinner)
            out["operations"][op] = res
            floor = res.get("floor", {}).get("median_ms")
            line = "  ".join(
                f"{k}={v['median_ms']:.3f}" + (f"({v['median_ms'] / floor:.2f}x)" if floor else "")
                if "median_ms" in v
                else f"{k}=n/a"
                for k, v in res.items()
            )
            log(f"  {op:16s} {time.perf_counter() - t0:5.1f}s  {line}")
    finally:
        interleave.stop_workers(handles)
    out["load_average_after"] = os.getloadavg()
    return out
