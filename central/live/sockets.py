"""The WebSocket endpoints: ``/ws/kiosk`` (bearer token), ``/ws/staff`` (session cookie), ``/ws/guest`` (a link)."""
from __future__ import annotations

import inspect
import logging
import struct
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from central.cluster.web import leads
from central.live.admission import Admitted, admit, kiosk_identity, staff_identity
from central.live.link import Link
from central.web.client import client_address
from protocol.codec import MAX_FRAME_BYTES, decode, error_frame
from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import Message

log = logging.getLogger(__name__)

# Frames between MAX_FRAME_BYTES and this get a typed too_large error; beyond it
# aiohttp closes the socket (1009) before reading the frame into memory at all.
TRANSPORT_LIMIT = 16 * MAX_FRAME_BYTES
HEARTBEAT_S = 20.0


async def serve(request: web.Request, kind: str, identity: dict) -> web.StreamResponse:
    """Serve an authenticated peer: here if this central leads, otherwise relayed to the leader through
    Valkey (central/cluster/edge.py). Either way the leader admits it (central/live/admission.py)."""
    if not leads(request) and (edge := request.app.get("edge")) is not None:
        return await edge.relay(request, kind, identity)
    return await _serve(request, await admit(request.app, kind, identity))


def open_socket(request: web.Request) -> web.WebSocketResponse:
    # autoping off: pongs are seen here, so central can ask a peer whether it is alive (Link.answers_ping).
    return web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=TRANSPORT_LIMIT, compress=False,
                                 autoping=False)


def socket_link(ws: web.WebSocketResponse, request: web.Request) -> Link:
    return Link(ws.send_str, ws.close, abort=lambda: _abort(request), ping=ws.ping,
                write_now=text_frame_writer(ws, request))


async def _serve(request: web.Request, admitted: Admitted) -> web.WebSocketResponse:
    ws = open_socket(request)
    await ws.prepare(request)
    sockets = request.app["websockets"]
    sockets.add(ws)
    link = socket_link(ws, request)
    peer = admitted.make_peer(link)
    admitted.on_open(peer)
    try:
        async for frame in ws:
            if link.closed:
                break
            if frame.type is WSMsgType.PING:
                await ws.pong(frame.data)
                continue
            if frame.type is WSMsgType.PONG:
                link.heard_pong()
                continue
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            if not leads(request):
                # Several centrals, and this one's term ended (its loop stalled past the limit, say): another
                # central may act on this visit now. Stepping down closes this socket (1012) in a moment.
                continue
            if (pending := handle_frame(admitted, peer, link, frame.data)) is not None:
                await pending
    finally:
        sockets.discard(ws)
        admitted.on_close(peer)
        await link.wait_closed()
    return ws


def handle_frame(admitted: Admitted, peer: object, link: Link, data: str | bytes) -> Awaitable[None] | None:
    """Decode one frame and hand it to the hub; a refusal goes back to the peer as a typed error. Nearly every
    message is handled at once; the few that need the database (a booking code) return an awaitable, and
    the peer's next frame waits for it (so its frames stay in order). The same for a relayed peer
    (central/cluster/remote_peers.py)."""
    message = None
    try:
        message = decode(data, admitted.direction)
        if inspect.isawaitable(pending := admitted.on_message(peer, message)):
            return _finish(pending, link, message)
    except ProtocolError as err:
        _refuse(link, err, message)
    except Exception:  # a bug must not take the other visits down with it
        _failed(link, message)
    return None


async def _finish(pending: Awaitable, link: Link, message: Message) -> None:
    try:
        await pending
    except ProtocolError as err:
        _refuse(link, err, message)
    except Exception:
        _failed(link, message)


def _refuse(link: Link, err: ProtocolError, message: Message | None) -> None:
    if err.ref is None and message is not None:
        err.ref = message.type  # the hub's errors name the message they refuse, too
    link.send(error_frame(err))


def _failed(link: Link, message: Message | None) -> None:
    log.exception("message handling failed")
    link.send(error_frame(ProtocolError(ErrorCode.INTERNAL_ERROR, "central failed to handle this message; try again",
                                        ref=message.type if message is not None else None)))


def text_frame_writer(ws: web.WebSocketResponse, request: web.Request) -> Callable[[str], bool]:
    """Write a text frame to the socket at once when its buffer is empty (the kernel took everything so far),
    without a turn of the link's writer task. Otherwise, or once the socket is closing, say no: the frame is
    queued and ``ws.send_str`` sends it, waiting for the socket to drain."""
    transport = request.transport

    def write_now(frame: str) -> bool:
        if ws.closed or transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return False
        data = frame.encode("utf-8")
        transport.write(_text_frame_header(len(data)) + data)
        return True
    return write_now


def _text_frame_header(length: int) -> bytes:
    """RFC 6455 5.2: FIN and the text opcode, then the length; a server's frames are not masked. As aiohttp
    frames them (compression is off on these sockets)."""
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


def _abort(request: web.Request) -> None:
    """Drop a peer that does not read: close() would wait for its buffer to drain, which it never does."""
    if request.transport is not None:
        request.transport.abort()


async def kiosk_socket(request: web.Request) -> web.StreamResponse:
    """``/ws/kiosk``: a kiosk authenticated by its bearer token."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    kiosk = None
    if scheme.lower() == "bearer" and credential.strip():  # the scheme is case-insensitive (RFC 9110)
        kiosk = await request.app["db"].kiosk_by_token(credential.strip())
    if kiosk is None:
        raise web.HTTPUnauthorized(text="unknown or revoked kiosk token; create a new one in the admin page\n")
    return await serve(request, "kiosk", kiosk_identity(kiosk))


async def staff_socket(request: web.Request) -> web.StreamResponse:
    """``/ws/staff``: a logged-in clerk's console, from central's own origin only."""
    staff = request.get("staff")
    if staff is None:
        raise web.HTTPUnauthorized(text="log in first\n")
    # Browsers send cookies with cross-site WebSocket handshakes: the Origin
    # check is what stops another site from driving a clerk's console.
    # (A missing Origin must not match an unset public_url: None == None.)
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-origin console connection refused\n")
    return await serve(request, "staff", staff_identity(staff, request.headers.get("User-Agent")))


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin in (f"{request.scheme}://{request.host}", request.app["config"].public_url)


async def guest_socket(request: web.Request) -> web.StreamResponse:
    """``/ws/guest``: an interpreter's or colleague's browser, from central's own guest page. No account: the
    link's secret comes in its first message (central/live/guest_side.py)."""
    if not same_origin(request):
        raise web.HTTPForbidden(text="open the guest link in a browser; other sites cannot connect here\n")
    return await serve(request, "guest", {"address": client_address(request, request.app["config"].trusted_proxies)})
