"""Central's kiosk WebSocket played by a test: greets, records what the kiosk sends, answers as told.

Only what the kiosk's session uses exists: ``/ws/kiosk`` with a welcome, frames the test
pushes, a close (of any code), a replaced error, and a central that stops reading.
"""
from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

WELCOME = {"type": "welcome", "kiosk_location": "Foyer", "ice_servers": [],
           "departments": [{"slug": "buergerbuero", "name": "Bürgerbüro", "open": True}]}


@dataclass
class Connection:
    ws: web.WebSocketResponse
    received: list[dict] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)  # notified on each received message
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps({"v": 1, **message}))

    async def close(self, code: int = 1012) -> None:
        await self.ws.close(code=code)

    async def recv(self, type: str, timeout: float = 10.0) -> dict:
        def first():
            return next((msg for msg in self.received if msg["type"] == type), None)
        async with asyncio.timeout(timeout), self.arrived:
            return await self.arrived.wait_for(first)


class FakeCentral:
    """``reading=False``: after the welcome the socket is never read again (a stalled central);
    its receive buffer is small, so the kiosk's writes stall after a megabyte or two."""

    def __init__(self, *, reading: bool = True, close_at_once: bool = False):
        self.reading, self.close_at_once = reading, close_at_once
        self.connections: list[Connection] = []
        self.connected_at: list[float] = []
        self._new = asyncio.Condition()
        self.url = ""

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(ws)
        async with self._new:
            self.connections.append(conn)
            self.connected_at.append(asyncio.get_running_loop().time())
            self._new.notify_all()
        await conn.send(**WELCOME)
        try:
            if self.close_at_once:
                await ws.close(code=1012)
            elif not self.reading:
                await asyncio.Event().wait()
            else:
                async for frame in ws:
                    async with conn.arrived:
                        conn.received.append(json.loads(frame.data))
                        conn.arrived.notify_all()
        finally:
            conn.closed.set()
        return ws

    async def connection(self, number: int, timeout: float = 20.0) -> Connection:
        """The ``number``-th connection (from 1), once it exists."""
        async with asyncio.timeout(timeout):
            async with self._new:
                await self._new.wait_for(lambda: len(self.connections) >= number)
        return self.connections[number - 1]


@asynccontextmanager
async def fake_central(**options):
    central = FakeCentral(**options)
    app = web.Application()
    app.router.add_get("/ws/kiosk", central._ws)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    central.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield central
    finally:
        await runner.cleanup()
