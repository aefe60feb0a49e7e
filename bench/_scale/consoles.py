"""The consoles' process: hundreds of logged-in clerk consoles that note when each visit reaches them.

A console's frames are recognised by their type's text; of a ``queue.joined`` only the visit id is cut out
(no JSON parsing of every frame: at hundreds of visits a second the consoles get tens of thousands of frames).
Per visit id the process keeps how many consoles have it and when the first and the last got it, and hands
that over on ``collect``. The sockets are bare WebSocket clients (``ws_client.py``) that read frames as they
come, with the time of the read that brought them: the load generator takes as little of the two cores
from central as it can.
"""
from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from time import perf_counter

from bench._common import BenchError
from bench._scale import STAGE_TIMEOUT_S
from bench._scale.closings import Closings
from bench._scale.lag import LoopLag
from bench._scale.worker import serve
from bench._scale.ws_client import WebSocketClient

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
        self.sockets: list[WebSocketClient] = []
        self.arrivals: dict[str, list] = {}   # visit id -> [consoles, first, last]
        self.frames = 0
        self.errors: list[str] = []
        self.closings = Closings()
        self.lag = LoopLag()

    async def connect(self) -> dict:
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        t0 = perf_counter()

        async def one(token: str) -> None:
            snapshot = self.loop.create_future()

            def on_text(text: str, when: float) -> None:
                if snapshot.done():
                    self._frame(text, when)
                elif SNAPSHOT in text:
                    snapshot.set_result(None)
                else:
                    snapshot.set_exception(BenchError(f"a console got {text[:120]!r} instead of its console.snapshot"))

            def on_closed(why: str | None) -> None:
                self.closings.add()
                if why is not None:
                    self.errors.append(why)
                if not snapshot.done():
                    snapshot.set_exception(BenchError(f"a console was closed before its console.snapshot: "
                                                      f"{why or 'see central.log (--scale-keep-tmp)'}"))

            async with limit:
                async with asyncio.timeout(STAGE_TIMEOUT_S):
                    client = await WebSocketClient.connect(
                        self.url, "/ws/staff", {"Origin": self.url, "Cookie": f"{SESSION_COOKIE}={token}"},
                        on_text, on_closed, perf_counter)
                    await snapshot
                self.sockets.append(client)

        await asyncio.gather(*(one(token) for token in self.sessions))
        return {"consoles": len(self.sockets), "seconds": perf_counter() - t0}

    def _frame(self, data: str, t: float) -> None:
        self.frames += 1
        if JOINED in data:
            start = data.index(VISIT_ID) + len(VISIT_ID)
            visit_id = data[start:data.index('"', start)]
            seen = self.arrivals.get(visit_id)
            if seen is None:
                self.arrivals[visit_id] = [1, t, t]
            else:
                seen[0] += 1
                seen[2] = t
        elif ERROR in data:
            self.errors.append(data[:200])

    def collect(self) -> dict:
        arrivals = dict(self.arrivals)   # the readers hold self.arrivals itself: emptied, never replaced
        self.arrivals.clear()
        frames, self.frames = self.frames, 0
        return {"arrivals": arrivals, "frames": frames, "errors": self.errors[:5], "error_count": len(self.errors),
                "closed": self.closings.count, "lag": self.lag.take()}

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
        for client in self.sockets:
            client.close()
        await self.closings.until(len(self.sockets), STAGE_TIMEOUT_S)   # central answers and closes
        for client in self.sockets:
            if client.transport is not None:
                client.transport.abort()


def main(conn: Connection, url: str, sessions: list[str]) -> None:
    async def run() -> None:
        await serve(conn, Consoles(url, sessions).handle)
    asyncio.run(run())
