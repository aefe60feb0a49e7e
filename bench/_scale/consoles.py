"""The consoles' process: hundreds of logged-in clerk consoles that note when each visit reaches them.

A console's frames are recognised by their type's text; of a ``queue.joined`` only the visit id is cut out
(no JSON parsing of every frame: at hundreds of visits a second the consoles get tens of thousands of frames).
Per visit id the process keeps how many consoles have it and when the first and the last got it, and hands
that over on ``collect``.
"""
from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from time import perf_counter

import aiohttp

from bench._common import BenchError
from bench._scale import STAGE_TIMEOUT_S
from bench._scale.lag import LoopLag
from bench._scale.worker import serve

CONNECT_CONCURRENCY = 16
SESSION_COOKIE = "ak_session"    # central/web/auth.py

JOINED = '"type":"queue.joined"'
SNAPSHOT = '"type":"console.snapshot"'
ERROR = '"type":"error"'
VISIT_ID = '"visit_id":"'


class Consoles:
    def __init__(self, url: str, sessions: list[str]):
        self.url = url
        self.sessions = sessions
        self.loop = asyncio.get_running_loop()
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.tasks: list[asyncio.Task] = []
        self.arrivals: dict[str, list] = {}   # visit id -> [consoles, first, last]
        self.frames = 0
        self.errors: list[str] = []
        self.closed = 0
        self.session: aiohttp.ClientSession | None = None
        self.lag = LoopLag()

    async def connect(self) -> dict:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=STAGE_TIMEOUT_S))
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        ws_url = self.url.replace("http://", "ws://", 1) + "/ws/staff"
        t0 = perf_counter()

        async def one(token: str) -> None:
            async with limit:
                ws = await self.session.ws_connect(
                    ws_url, headers={"Origin": self.url, "Cookie": f"{SESSION_COOKIE}={token}"},
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=STAGE_TIMEOUT_S))
                async with asyncio.timeout(STAGE_TIMEOUT_S):
                    first = await ws.receive()
                if first.type is not aiohttp.WSMsgType.TEXT or SNAPSHOT not in first.data:
                    raise BenchError(f"a console got {str(first.data)[:120]!r} instead of its console.snapshot")
                self.sockets.append(ws)
                self.tasks.append(self.loop.create_task(self._read(ws)))

        await asyncio.gather(*(one(token) for token in self.sessions))
        return {"consoles": len(self.sockets), "seconds": perf_counter() - t0}

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        arrivals = self.arrivals
        async for msg in ws:   # autoping answers central's heartbeat
            t = perf_counter()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = msg.data
            self.frames += 1
            if JOINED in data:
                start = data.index(VISIT_ID) + len(VISIT_ID)
                visit_id = data[start:data.index('"', start)]
                seen = arrivals.get(visit_id)
                if seen is None:
                    arrivals[visit_id] = [1, t, t]
                else:
                    seen[0] += 1
                    seen[2] = t
            elif ERROR in data:
                self.errors.append(data[:200])
        self.closed += 1

    def collect(self) -> dict:
        arrivals = dict(self.arrivals)   # the readers hold self.arrivals itself: emptied, never replaced
        self.arrivals.clear()
        frames, self.frames = self.frames, 0
        return {"arrivals": arrivals, "frames": frames, "errors": self.errors[:5], "error_count": len(self.errors),
                "closed": self.closed, "lag": self.lag.take()}

    async def handle(self, command: dict) -> dict | None:
        if command["cmd"] == "connect":
            return await self.connect()
        if command["cmd"] == "collect":
            return self.collect()
        if command["cmd"] == "mark":   # a step starts: its loop lag from here
            self.lag.take()
            return {}
        if command["cmd"] == "stop":
            await self.close()
            return None
        raise BenchError(f"unknown command {command['cmd']!r}")

    async def close(self) -> None:
        self.lag.stop()
        if self.sockets:
            await asyncio.wait([self.loop.create_task(ws.close()) for ws in self.sockets], timeout=STAGE_TIMEOUT_S)
        if self.session is not None:
            await self.session.close()


def main(conn: Connection, url: str, sessions: list[str]) -> None:
    async def run() -> None:
        await serve(conn, Consoles(url, sessions).handle)
    asyncio.run(run())
