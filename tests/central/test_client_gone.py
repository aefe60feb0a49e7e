"""A client that leaves before central has answered (a kiosk giving up on a central during a change of leader)
leaves a quiet 499 in the access log, not an "Error handling request" traceback (central/web/client_gone.py)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.test_utils import TestServer

from central.web.client_gone import CLIENT_CLOSED_REQUEST, quiet_when_client_left
from tests.polling import until

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: central.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


async def serve_and_leave(handler) -> list[logging.LogRecord]:
    app = web.Application(middlewares=[quiet_when_client_left])
    app.router.add_get("/ws", handler)
    records: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = records.append
    for name in ("aiohttp.server", "aiohttp.access"):
        logging.getLogger(name).addHandler(catcher)
        logging.getLogger(name).setLevel(logging.INFO)
    server = TestServer(app)
    await server.start_server()
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(UPGRADE)
        await writer.drain()
        writer.close()  # the kiosk gives up before the answer
        await until(lambda: any(r.name == "aiohttp.access" or r.levelno >= logging.ERROR for r in records),
                    seconds=10)
    finally:
        await server.close()
        for name in ("aiohttp.server", "aiohttp.access"):
            logging.getLogger(name).removeHandler(catcher)
    return records


async def wait_until_gone(request: web.Request) -> None:
    await until(lambda: request.transport is None or request.transport.is_closing(), seconds=10)


async def test_a_websocket_client_that_left_before_the_handshake_is_no_error():
    async def standby(request: web.Request) -> web.WebSocketResponse:
        await wait_until_gone(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)  # the handshake to a client that is gone: ConnectionResetError
        await ws.close(code=4000)
        return ws

    records = await serve_and_leave(standby)
    assert [r for r in records if r.levelno >= logging.ERROR] == []
    assert any(r.name == "aiohttp.access" and f" {CLIENT_CLOSED_REQUEST} " in r.getMessage() for r in records)


async def test_the_same_error_on_a_connection_still_open_is_still_an_error():
    async def broken(request: web.Request) -> web.Response:
        raise ConnectionResetError("a bug of ours, the client still waits")

    app = web.Application(middlewares=[quiet_when_client_left])
    app.router.add_get("/", broken)
    records: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = records.append
    logging.getLogger("aiohttp.server").addHandler(catcher)
    server = TestServer(app)
    await server.start_server()
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: central.test\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
    finally:
        await server.close()
        logging.getLogger("aiohttp.server").removeHandler(catcher)
    assert status.startswith(b"HTTP/1.1 500")
    assert any("Error handling request" in r.getMessage() for r in records)
