"""The simulated clients, all in this process: clerk consoles that note when each visit reaches them, and
kiosks that run one visit at a time (request, wait for every console, cancel)."""
from __future__ import annotations

import asyncio
import json
from time import perf_counter
from typing import TYPE_CHECKING

import aiohttp

from bench._central_latency import STAGE_TIMEOUT_S
from bench._central_latency.phases import Sample, VisitFailed
from bench._common import BenchError
from bench._limits import RateLimited

if TYPE_CHECKING:
    from bench._central_latency.driver import Bench


class Tracker:
    """Which consoles have shown one visit, and when the first and the last did."""
    __slots__ = ("count", "first", "last", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.done = loop.create_future()


class Console:
    def __init__(self, bench: Bench, username: str, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse):
        self.bench, self.username, self.session, self.ws = bench, username, session, ws
        self.snapshot: asyncio.Future = asyncio.get_running_loop().create_future()
        self.frames = 0
        self.errors: list[dict] = []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        got = self.bench.console_got
        async for msg in self.ws:  # ends when the socket closes; autoping answers central's heartbeat
            t = perf_counter()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.frames += 1
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "queue.joined":
                got(data["visit"]["visit_id"], t)
            elif kind == "console.snapshot" and not self.snapshot.done():
                self.snapshot.set_result(data)
            elif kind == "error":
                self.errors.append(data)
        if not self.snapshot.done():
            self.snapshot.set_exception(BenchError(f"console {self.username} closed before its snapshot"))
        self.bench.closed_consoles += 1


class Kiosk:
    WANTED = frozenset({"welcome", "visit.queued", "visit.ended", "visit.refused", "error"})

    def __init__(self, bench: Bench, ws: aiohttp.ClientWebSocketResponse):
        self.bench, self.ws = bench, ws
        self.inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.healthy = True
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            t = perf_counter()
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") in self.WANTED:  # visit.position etc. are not needed here
                    self.inbox.put_nowait((t, data))
        self.healthy = False
        self.inbox.put_nowait((perf_counter(), {"type": "closed"}))

    async def expect(self, kind: str, visit_id: str | None = None) -> tuple[float, dict]:
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            while True:
                t, data = await self.inbox.get()
                if data["type"] == kind and (visit_id is None or data.get("visit_id") == visit_id):
                    return t, data
                if data["type"] == "error" and data.get("code") == "rate_limited":
                    raise RateLimited("a visit request" if kind == "visit.queued" else f"a message (awaiting {kind})",
                                      f"retry after {data.get('retry_after_s')} s")
                if data["type"] in ("error", "visit.refused", "closed"):
                    raise VisitFailed(f"{data['type']}: {data.get('code') or data.get('reason') or ''}".strip())

    async def visit(self, scheduled: float) -> Sample:
        bench = self.bench
        sent = perf_counter()
        await self.ws.send_str(bench.request_frame)
        try:
            t_queued, queued = await self.expect("visit.queued")
        except BaseException:
            self.healthy = False  # a late visit.queued would leave it with a waiting visit
            raise
        visit_id = queued["visit_id"]
        tracker = bench.tracker(visit_id)
        try:
            async with asyncio.timeout(STAGE_TIMEOUT_S):
                await asyncio.shield(tracker.done)
            return Sample(scheduled, sent, (t_queued - sent) * 1000, (tracker.first - sent) * 1000,
                          (tracker.last - sent) * 1000)
        except TimeoutError:
            raise VisitFailed(f"only {tracker.count} of {bench.n_consoles} consoles got queue.joined") from None
        finally:
            try:
                await self.ws.send_str(json.dumps({"v": 1, "type": "visit.cancel", "visit_id": visit_id}))
                await self.expect("visit.ended", visit_id)
            except BaseException:
                self.healthy = False  # it may still have a waiting visit: keep it out of the pool
                raise
            finally:
                bench.trackers.pop(visit_id, None)
