"""The measuring process of one contender, driven over a pipe by the orchestrator.

Messages in: ``("run", op, n)`` and ``("stop",)``. Messages out: ``("ready", info)``
once set up, ``("unavailable", reason)`` if the contender cannot start, then
``("ok", durations_ns)`` or ``("error", text)`` for each block.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from bench import contenders
from bench.contenders.base import Contender, Operation, Unsupported
from bench.fixtures import Fixtures
from bench.pinning import pin_self


def _sync_block(op: Operation, n: int) -> list[int]:
    clock = time.perf_counter_ns
    run, prepare = op.run, op.prepare
    durations = []
    for _ in range(n):
        if prepare is not None:
            prepare()
        start = clock()
        run()
        durations.append(clock() - start)
    return durations


async def _async_block(op: Operation, n: int) -> list[int]:
    clock = time.perf_counter_ns
    run, prepare = op.run, op.prepare
    durations = []
    for _ in range(n):
        if prepare is not None:
            await prepare()
        start = clock()
        await run()
        durations.append(clock() - start)
    return durations


class Runner:
    """Runs a contender's calls, inside one event loop when it is async."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self._loop = asyncio.new_event_loop() if contender.is_async else None

    def call(self, result: Any) -> Any:
        if self._loop is not None:
            return self._loop.run_until_complete(result)
        return result

    def block(self, op: Operation, n: int) -> list[int]:
        if self._loop is not None:
            return self._loop.run_until_complete(_async_block(op, n))
        return _sync_block(op, n)


def main(name: str, dsn: str, fixtures: dict[str, int], cpu: int | None, pipe: Connection) -> None:
    pin_self(cpu)
    try:
        contender = contenders.make(name)
        runner = Runner(contender)
        runner.call(contender.setup(dsn, Fixtures(**fixtures)))
        ops = contender.operations()
    except Exception as exc:
        pipe.send(("unavailable", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        pipe.close()
        return
    pipe.send(
        (
            "ready",
            {
                "description": contender.description,
                "notes": contender.notes,
                "unsupported": {k: v.reason for k, v in ops.items() if isinstance(v, Unsupported)},
            },
        )
    )
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            runner.call(contender.close())
            pipe.send(("stopped",))
            return
        _, op_name, n = message
        op = ops[op_name]
        assert isinstance(op, Operation)
        try:
            pipe.send(("ok", runner.block(op, n)))
        except Exception as exc:
            pipe.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
            traceback.print_exc()
