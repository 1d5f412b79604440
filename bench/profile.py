"""Profile one contender's operation with pyinstrument, on an already loaded database.

``python -m bench.profile chatstore whole_1000 --iterations 300`` (after a bench run,
which leaves the ``chatstore_bench`` database in place).
"""

from __future__ import annotations

import argparse

import psycopg
from pyinstrument import Profiler

from bench import contenders
from bench.contenders.base import OPERATIONS, Operation
from bench.fixtures import find_fixtures
from bench.server import BENCH_DATABASE, server_dsn, with_database
from bench.worker import Runner


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("contender", choices=list(contenders.MODULES))
    p.add_argument("operation", choices=list(OPERATIONS))
    p.add_argument("--iterations", type=int, default=300)
    args = p.parse_args()
    with server_dsn() as admin:
        dsn = with_database(admin, BENCH_DATABASE)
        with psycopg.connect(dsn) as conn:
            fixtures = find_fixtures(conn)
        contender = contenders.make(args.contender)
        runner = Runner(contender)
        runner.call(contender.setup(dsn, fixtures))
        op = contender.operations()[args.operation]
        assert isinstance(op, Operation)
        runner.block(op, 20)
        profiler = Profiler(interval=0.0002)
        profiler.start()
        runner.block(op, args.iterations)
        profiler.stop()
        runner.call(contender.close())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
