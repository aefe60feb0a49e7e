"""A frame goes straight to the socket when nothing waits before it; otherwise it waits its turn.

First the Link with a fake socket (what is written at once, what is queued, in which order); then
central's own frame writer on a real aiohttp WebSocket: frames of every length class of RFC 6455
(under 126 bytes, up to 64 KiB, beyond) and non-ASCII text arrive as sent.
"""
from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from central.live.link import Link
from central.live.sockets import text_frame_writer


class Socket:
    """A socket whose buffer is empty until ``full`` is set; queued frames go through ``send_str``."""

    def __init__(self) -> None:
        self.wire: list[str] = []     # in the order the peer gets them
        self.full = False
        self.drained = asyncio.Event()
        self.drained.set()
        self.written_at_once = 0

    def write_now(self, frame: str) -> bool:
        if self.full:
            return False
        self.wire.append(frame)
        self.written_at_once += 1
        return True

    async def send_str(self, frame: str) -> None:
        self.wire.append(frame)
        await self.drained.wait()

    async def close(self) -> None:
        pass


async def test_frames_are_written_at_once_while_the_socket_takes_them():
    socket = Socket()
    link = Link(socket.send_str, socket.close, write_now=socket.write_now)
    for i in range(3):
        link.send(f"frame {i}")
    assert socket.wire == ["frame 0", "frame 1", "frame 2"]   # before the writer task had a turn
    assert link.queued_bytes == 0
    await link.wait_closed()


async def test_once_the_socket_is_full_later_frames_wait_behind_the_queued_ones():
    socket = Socket()
    link = Link(socket.send_str, socket.close, write_now=socket.write_now)
    link.send("a")
    socket.full = True
    link.send("b")          # the socket is full: queued
    socket.full = False
    link.send("c")          # the socket would take it, but "b" is before it
    assert socket.wire == ["a"] and link.queued_bytes == 2
    await asyncio.sleep(0)  # the writer sends what is queued
    await asyncio.sleep(0)
    assert socket.wire == ["a", "b", "c"] and link.queued_bytes == 0
    link.send("d")          # nothing queued any more: at once again
    assert socket.wire == ["a", "b", "c", "d"] and socket.written_at_once == 2
    await link.wait_closed()


async def test_no_frame_overtakes_one_the_writer_is_still_sending():
    socket = Socket()
    link = Link(socket.send_str, socket.close, write_now=socket.write_now)
    socket.full = True
    socket.drained.clear()  # send_str waits for the socket to drain
    link.send("big")
    await asyncio.sleep(0)  # the writer took "big" and waits inside send_str; the queue is empty
    socket.full = False
    link.send("small")
    assert socket.wire == ["big"]
    socket.drained.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert socket.wire == ["big", "small"]
    await link.wait_closed()


FRAMES = ["x", "y" * 125, "z" * 126, "Grüße aus dem Bürgerbüro €" * 50, "w" * 65_535, "v" * 65_536,
          '{"type":"console.snapshot","waiting":[' + ",".join(['{"visit_id":"ä"}'] * 10_000) + "]}"]


async def test_central_s_frame_writer_sends_every_length_as_aiohttp_would(aiohttp_client):
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        writer = text_frame_writer(ws, request)
        seen["at once"] = [writer(frame) for frame in FRAMES[:2]]   # an empty socket buffer takes these
        link = Link(ws.send_str, ws.close, write_now=writer)
        for frame in FRAMES[2:]:
            link.send(frame)
        await ws.send_str("through aiohttp")   # both ways of writing share the socket
        link.send("after")
        await ws.receive()                     # until the client closes
        seen["after close"] = writer("too late")
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        got = [await ws.receive(timeout=5) for _ in range(len(FRAMES) + 2)]
    await asyncio.sleep(0.1)
    assert [m.type for m in got] == [WSMsgType.TEXT] * (len(FRAMES) + 2)
    assert [m.data for m in got] == [*FRAMES, "through aiohttp", "after"]
    assert seen == {"at once": [True, True], "after close": False}
