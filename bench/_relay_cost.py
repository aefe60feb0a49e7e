"""What relaying a socket through an edge central costs, per frame (bench failover, docs/benchmarks.md).

One kiosk connects straight to the leader, another straight to the other central (the edge, which relays
it through Valkey: central/cluster/edge.py), each without HAProxy. Each sends ``ping`` and waits for
``pong``, one after the other, ``frames`` times. A relayed ping crosses the relay twice (the ping up to
the leader, the pong back), so half the difference of the round trips is what the relay adds to one
frame, and the CPU of both centrals and Valkey during the relayed series, less the direct one's, over
twice ``frames``, is what it costs.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import aiohttp

from bench._common import proc_cpu_s

WARM_UP = 50


@dataclass
class Series:
    rtt_ms: list[float]
    cpu_s: float  # both centrals and Valkey together


@dataclass
class RelayCost:
    direct: Series
    relayed: Series
    edge_cpu_s: float  # the edge alone, during the relayed series
    frames: int

    @property
    def added_ms_p50(self) -> float:
        return (statistics.median(self.relayed.rtt_ms) - statistics.median(self.direct.rtt_ms)) / 2

    @property
    def added_cpu_us_per_frame(self) -> float:
        return (self.relayed.cpu_s - self.direct.cpu_s) / (2 * self.frames) * 1e6

    @property
    def edge_cpu_us_per_frame(self) -> float:
        return self.edge_cpu_s / (2 * self.frames) * 1e6


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


async def measure(c, session: aiohttp.ClientSession, tokens: list[str], redis_pid: int,  # noqa: ANN001
                  frames: int) -> RelayCost:
    """``c`` a tests.central.failover_scenario.Cluster; ``tokens`` two kiosks not otherwise connected."""
    from tests.central.central_processes import Kiosk

    leader = await c.leader(session)
    edge = next(central for central in c.centrals if central is not leader)
    pids = (leader.proc.pid, edge.proc.pid, redis_pid)
    series, edge_cpu = [], 0.0
    for central, token in ((leader, tokens[0]), (edge, tokens[1])):
        kiosk = Kiosk(central, session, token)
        await kiosk.connect()
        for _ in range(WARM_UP):
            await kiosk.send(type="ping")
            await kiosk.recv("pong")
        before = [proc_cpu_s(pid) for pid in pids]
        rtts = []
        for _ in range(frames):
            sent = time.perf_counter()
            await kiosk.send(type="ping")
            await kiosk.recv("pong")
            rtts.append((time.perf_counter() - sent) * 1000)
        used = [proc_cpu_s(pid) - was for pid, was in zip(pids, before, strict=True)]
        series.append(Series(rtts, sum(used)))
        edge_cpu = used[1]
        kiosk.seen.clear()
        await kiosk.ws.close()
    return RelayCost(series[0], series[1], edge_cpu, frames)
