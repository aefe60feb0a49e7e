"""A client that leaves while central is still answering it (a kiosk or console giving up on a central that
stands by, during a change of leader) is no error of central's.

aiohttp logs every exception a handler raises as "Error handling request", with its traceback. When the
client has already closed its connection, writing the answer (a WebSocket's handshake, a close frame)
raises ConnectionResetError: here that becomes a quiet 499 ("client closed request", as nginx logs it)
in the access log; the same error on a connection that is still open is raised as before.
"""
from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499


@web.middleware
async def quiet_when_client_left(request: web.Request, handler):
    try:
        return await handler(request)
    except ConnectionResetError:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise
        log.debug("%s %s: the client left before it had its answer", request.method, request.path)
        return web.Response(status=CLIENT_CLOSED_REQUEST)
