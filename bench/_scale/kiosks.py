"""The kiosks' process: thousands of idle kiosk WebSockets, and steps of visits started at a fixed rate.

Each kiosk asks for visits in one department. A visit: the kiosk sends a pre-encoded ``visit.request``
(the time just before is the visit's start), central answers ``visit.queued``; ``hold_s`` later the kiosk
cancels (so waiting rooms hold rate × hold_s / departments visits each, and every cancel moves those behind
it), and central's ``visit.ended`` frees the kiosk. Frames are recognised by their type's text, not parsed,
except the few this process needs a field of. The sockets are bare WebSocket clients (``ws_client.py``), as
the consoles' are, so the load generator takes as little of the two cores from central as it can.

Kiosks are taken in turns, and only when central would accept their request (``bench/_limits.py``:
``VISIT_REQUESTS``); a step first waits until enough kiosks may ask again.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from multiprocessing.connection import Connection
from time import perf_counter

from bench._common import BenchError
from bench._limits import Allowance, RateLimited
from bench._scale import STAGE_TIMEOUT_S
from bench._scale.closings import Closings
from bench._scale.lag import LoopLag
from bench._scale.worker import serve
from bench._scale.ws_client import WebSocketClient

CONNECT_CONCURRENCY = 32
STEP_READY_MAX_WAIT_S = 90.0   # at most this long for kiosks to get their visit requests back before a step

QUEUED = '"type":"visit.queued"'
ENDED = '"type":"visit.ended"'
REFUSED = '"type":"visit.refused"'
ERROR = '"type":"error"'
WELCOME = '"type":"welcome"'


class Kiosk:
    __slots__ = ("index", "ws", "department", "request", "visit_id", "sent", "welcome")

    def __init__(self, index: int, department: str):
        self.index, self.department = index, department
        self.ws: WebSocketClient | None = None
        self.request = json.dumps({"v": 1, "type": "visit.request", "department": department, "language": "de"})
        self.visit_id: str | None = None
        self.sent = 0.0
        self.welcome = asyncio.get_running_loop().create_future()


class Kiosks:
    def __init__(self, url: str, kiosks: list[tuple[str, str]], hold_s: float):
        self.url = url
        self.plan = kiosks
        self.hold_s = hold_s
        self.loop = asyncio.get_running_loop()
        self.kiosks: list[Kiosk] = []
        self.idle: deque[Kiosk] = deque()
        self.allowance = Allowance()
        self.closings = Closings()
        self.refused: str | None = None
        self.lag = LoopLag()
        self._reset_step()

    def _reset_step(self) -> None:
        self.visits: list[tuple[str, str, float, float]] = []   # (visit id, department, sent, queued)
        self.failures: Counter = Counter()
        self.in_flight = 0
        self.all_back: asyncio.Event = asyncio.Event()

    # -- connecting ------------------------------------------------------------------
    async def connect(self) -> dict:
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        t0 = perf_counter()

        async def one(index: int, token: str, department: str) -> Kiosk:
            kiosk = Kiosk(index, department)
            async with limit:
                async with asyncio.timeout(STAGE_TIMEOUT_S):
                    kiosk.ws = await WebSocketClient.connect(
                        self.url, "/ws/kiosk", {"Authorization": f"Bearer {token}"},
                        lambda text, when: self._text(kiosk, text, when), lambda why: self._closed(kiosk, why),
                        perf_counter)
                    await kiosk.welcome
                return kiosk

        self.kiosks = list(await asyncio.gather(*(one(i, t, d) for i, (t, d) in enumerate(self.plan))))
        self.idle.extend(self.kiosks)
        return {"kiosks": len(self.kiosks), "seconds": perf_counter() - t0}

    # -- reading ---------------------------------------------------------------------
    def _text(self, kiosk: Kiosk, data: str, t: float) -> None:
        """A frame from central; ``t`` is when it was read (the client answers central's heartbeat pings)."""
        if QUEUED in data:
            kiosk.visit_id = visit_id = json.loads(data)["visit_id"]
            self.visits.append((visit_id, kiosk.department, kiosk.sent, t))
            cancel = json.dumps({"v": 1, "type": "visit.cancel", "visit_id": visit_id})
            if self.hold_s > 0:
                self.loop.call_later(self.hold_s, self._send_soon, kiosk, cancel)
            else:
                self._send_soon(kiosk, cancel)
        elif ENDED in data:
            self._back(kiosk)
        elif REFUSED in data or ERROR in data:
            found = json.loads(data)
            if found.get("code") == "rate_limited":
                self.refused = str(RateLimited("a visit request", f"retry after {found.get('retry_after_s')} s"))
            self.failures[f"{found['type']}: {found.get('code') or found.get('reason')}"] += 1
            if kiosk.visit_id is None:   # the request itself was refused: no visit to end
                self._back(kiosk)
        elif WELCOME in data and not kiosk.welcome.done():
            kiosk.welcome.set_result(None)

    def _closed(self, kiosk: Kiosk, why: str | None) -> None:
        self.closings.add()
        if why is not None:
            self.failures[why] += 1
        if not kiosk.welcome.done():
            kiosk.welcome.set_exception(BenchError(f"kiosk {kiosk.index} closed before its welcome: "
                                                   f"{why or 'see central.log (--scale-keep-tmp)'}"))

    def _send_soon(self, kiosk: Kiosk, frame: str) -> None:
        try:
            kiosk.ws.send_text(frame)
        except ConnectionResetError:
            pass   # counted as closed (self.closings), which fails the step

    def _back(self, kiosk: Kiosk) -> None:
        kiosk.visit_id = None
        self.idle.append(kiosk)
        self.in_flight -= 1
        if self.in_flight == 0:
            self.all_back.set()

    # -- a step of visits -------------------------------------------------------------
    def _ready_in_s(self, visits: int) -> float:
        """Seconds until ``visits`` idle kiosks may each ask once more (central's pace refills them)."""
        rate = self.allowance.rate
        waits = sorted(max(0.0, (1 + Allowance.SLACK - self.allowance.tokens(k)) / rate.per_second)
                       for k in self.idle)
        return waits[visits - 1] if visits <= len(waits) else float("inf")

    def _take(self) -> Kiosk | None:
        for _ in range(len(self.idle)):
            kiosk = self.idle.popleft()
            if self.allowance.take(kiosk):
                return kiosk
            self.idle.append(kiosk)
        return None

    async def step(self, rate: float, visits: int) -> dict:
        waited = min(self._ready_in_s(visits), STEP_READY_MAX_WAIT_S)
        if waited > 0:   # a step larger than the kiosks can start is cut short below ("no kiosk free")
            await asyncio.sleep(waited + 0.1)
        self._reset_step()
        self.lag.take()
        not_started = 0
        lags = []
        start = perf_counter() + 0.05
        for i in range(visits):
            scheduled = start + i / rate
            if (delay := scheduled - perf_counter()) > 0:
                await asyncio.sleep(delay)
            kiosk = self._take()
            if kiosk is None:
                not_started += 1
                continue
            self.in_flight += 1
            kiosk.sent = now = perf_counter()
            lags.append(now - scheduled)
            kiosk.ws.send_text(kiosk.request)
        sent_s = perf_counter() - start + 1 / rate   # the step's span: one interval per visit started
        if self.in_flight:
            try:
                async with asyncio.timeout(self.hold_s + 3 * STAGE_TIMEOUT_S):
                    await self.all_back.wait()
            except TimeoutError:
                self.failures["no visit.ended within the timeout"] += self.in_flight
        lags.sort()
        return {"visits": self.visits,
                "failures": dict(self.failures), "not_started": not_started, "waited_s": waited,
                "sent_s": sent_s, "start_lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
                "closed": self.closings.count, "refused": self.refused, "lag": self.lag.take()}

    async def handle(self, command: dict) -> dict | None:
        if command["cmd"] == "connect":
            return await self.connect()
        if command["cmd"] == "step":
            return await self.step(command["rate"], command["visits"])
        if command["cmd"] == "stop":
            await self.close()
            return None
        raise BenchError(f"unknown command {command['cmd']!r}")

    async def close(self) -> None:
        self.lag.stop()
        for kiosk in self.kiosks:
            kiosk.ws.close()
        await self.closings.until(len(self.kiosks), STAGE_TIMEOUT_S)   # central answers and closes
        for kiosk in self.kiosks:
            if kiosk.ws.transport is not None:
                kiosk.ws.transport.abort()


def main(conn: Connection, url: str, kiosks: list[tuple[str, str]], hold_s: float) -> None:
    async def run() -> None:
        await serve(conn, Kiosks(url, kiosks, hold_s).handle)
    asyncio.run(run())
