"""The scale bench's bare WebSocket client (bench/_scale/ws_client.py) against a real aiohttp server: it reads
text frames of every length class in order, answers pings, closes cleanly, and refuses what it cannot read."""
from __future__ import annotations

from time import perf_counter

from aiohttp import WSMsgType, web

from bench._scale.ws_client import WebSocketClient
from tests.polling import until

FRAMES = ["x", "y" * 125, "z" * 126, "Grüße €" * 40, "w" * 65_535, "v" * 70_000]


async def connect(server, path: str, texts: list, closed: list) -> WebSocketClient:
    return await WebSocketClient.connect(str(server.make_url("")).rstrip("/"), path, {"Origin": "http://x"},
                                         lambda text, when: texts.append(text), closed.append, perf_counter)


async def test_the_client_reads_what_central_sends_and_answers_its_pings(aiohttp_server):
    seen = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        for frame in FRAMES:
            await ws.send_str(frame)
        await ws.ping(b"are you there")
        seen["pong"] = await ws.receive(timeout=5)
        seen["close"] = await ws.receive(timeout=5)   # the client's closing handshake
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    texts, closed = [], []
    client = await connect(server, "/ws", texts, closed)
    await until(lambda: len(texts) >= len(FRAMES) and "pong" in seen, 5, 0.01, what="every frame and the pong")
    client.close()
    await until(lambda: closed, 5, 0.01, what="the closing handshake")
    assert texts == FRAMES
    assert seen["pong"].type is WSMsgType.PONG and seen["pong"].data == b"are you there"
    assert seen["close"].type is WSMsgType.CLOSE and seen["close"].data == 1000
    assert closed == [None]


async def test_what_the_client_sends_arrives_as_sent(aiohttp_server):
    got = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:   # aiohttp refuses unmasked client frames: these are masked
            got.append(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    texts, closed = [], []
    client = await connect(server, "/ws", texts, closed)
    sent = ['{"v":1,"type":"visit.request","department":"amt-01","language":"de"}', "ß" * 200, "q" * 65_535]
    for text in sent:
        client.send_text(text)
    client.close()
    await until(lambda: closed, 5, 0.01, what="the socket's end")
    assert got == sent and closed == [None]


async def test_a_frame_the_client_cannot_read_ends_the_connection_with_the_reason(aiohttp_server):
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"\x00\x01")   # consoles get text only
        await ws.receive(timeout=5)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    texts, closed = [], []
    await connect(server, "/ws", texts, closed)
    await until(lambda: closed, 5, 0.01, what="the socket's end")
    assert texts == [] and "opcode 0x2" in closed[0]


async def test_a_refused_upgrade_is_named(aiohttp_server):
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPForbidden(text="cross-origin console connection refused\n")

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    texts, closed = [], []
    await connect(server, "/ws", texts, closed)
    await until(lambda: closed, 5, 0.01, what="the socket's end")
    assert closed[0].startswith("central refused the WebSocket: HTTP/1.1 403")
