"""How late a load-generator process's event loop runs: a task that sleeps 10 ms and notes how much longer
it took. A late loop reads central's frames late, so its lag is part of every latency the process measures;
beside central's wait for a CPU (``bench._common.proc_sched_s``) it tells whose delay a slow step was."""
from __future__ import annotations

import asyncio
from time import perf_counter

from bench._common import percentile

TICK_S = 0.01


class LoopLag:
    def __init__(self) -> None:
        self._lags: list[float] = []
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            before = perf_counter()
            await asyncio.sleep(TICK_S)
            self._lags.append(perf_counter() - before - TICK_S)

    def take(self) -> dict:
        """p99 and max of the lags since the last take, in ms, and starts anew."""
        lags, self._lags = sorted(self._lags), []
        return {"p99_ms": 1000 * percentile(lags, 99), "max_ms": 1000 * lags[-1] if lags else float("nan")}

    def stop(self) -> None:
        self._task.cancel()
