"""The WebSocket endpoints: ``/ws/kiosk`` (bearer token), ``/ws/staff`` (session cookie), ``/ws/guest`` (a link)."""
from __future__ import annotations

import inspect
import logging
import struct
from collections.abc import Callable

from aiohttp import WSMsgType, web

from central.cluster.web import leads
from central.live.hub import GuestPeer, Hub, KioskPeer, StaffPeer
from central.live.limits import retry_after_s
from central.live.link import Link
from central.web.client import client_address
from protocol.codec import MAX_FRAME_BYTES, decode, error_frame
from protocol.errors import ErrorCode, ProtocolError
from protocol.guests import GUEST_TO_CENTRAL
from protocol.messages import KIOSK_TO_CENTRAL, STAFF_TO_CENTRAL

log = logging.getLogger(__name__)

# Frames between MAX_FRAME_BYTES and this get a typed too_large error; beyond it
# aiohttp closes the socket (1009) before reading the frame into memory at all.
TRANSPORT_LIMIT = 16 * MAX_FRAME_BYTES
HEARTBEAT_S = 20.0
# How long a kiosk's open connection has to answer a ping when the same kiosk connects again.
ALIVE_PROBE_S = 1.0


async def _serve(request: web.Request, direction, on_message: Callable, on_open: Callable,
                 on_close: Callable, make_peer: Callable[[Link], object]) -> web.WebSocketResponse:
    # autoping off: pongs are seen here, so central can ask a peer whether it is alive (Link.answers_ping).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=TRANSPORT_LIMIT, compress=False, autoping=False)
    await ws.prepare(request)
    sockets = request.app["websockets"]
    sockets.add(ws)
    link = Link(ws.send_str, ws.close, abort=lambda: _abort(request), ping=ws.ping,
                write_now=text_frame_writer(ws, request))
    peer = make_peer(link)
    on_open(peer)
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
            data = frame.data
            message = None
            try:
                message = decode(data, direction)
                # Nearly every message is handled at once; the few that need the database (a booking
                # code) return an awaitable, and this connection's next message waits for it.
                if inspect.isawaitable(pending := on_message(peer, message)):
                    await pending
            except ProtocolError as err:
                if err.ref is None and message is not None:
                    err.ref = message.type  # the hub's errors name the message they refuse, too
                link.send(error_frame(err))
            except Exception:  # a bug must not take the other visits down with it
                log.exception("message handling failed")
                link.send(error_frame(ProtocolError(ErrorCode.INTERNAL_ERROR,
                                                    "central failed to handle this message; try again",
                                                    ref=message.type if message is not None else None)))
    finally:
        sockets.discard(ws)
        on_close(peer)
        await link.wait_closed()
    return ws


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
    hub: Hub = request.app["hub"]
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    kiosk = None
    if scheme.lower() == "bearer" and credential.strip():  # the scheme is case-insensitive (RFC 9110)
        kiosk = await request.app["db"].kiosk_by_token(credential.strip())
    if kiosk is None:
        raise web.HTTPUnauthorized(text="unknown or revoked kiosk token; create a new one in the admin page\n")
    # Counted only once the token is known good, so nobody can lock a kiosk out by its id alone.
    if wait := request.app["kiosk_connects"].take(kiosk.id):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"this kiosk reconnects too often; wait {seconds} s between attempts\n")
    # This connection will replace an open one of the same kiosk. If that one still answers, two
    # units hold the token (a cloned SD card); a unit reconnecting after a network failure leaves
    # a dead connection behind, which does not answer, so one unit is not taken for two.
    if (old := hub.kiosks.get(kiosk.id)) is not None and await old.link.answers_ping(ALIVE_PROBE_S):
        log.warning("kiosk %d: its token is used by two connections at once (two units with one token?)",
                    kiosk.id)
        await request.app["db"].record_token_reuse(kiosk.id)
    # Sent right after welcome: what the kiosk offers (departments, languages) and how it sounds and looks.
    settings = await request.app["db"].kiosk_settings.effective(kiosk.id, kiosk.location, list(hub.departments))
    return await _serve(request, KIOSK_TO_CENTRAL, hub.kiosk_message, hub.kiosk_connected,
                        hub.kiosk_disconnected, lambda link: KioskPeer(kiosk, link, settings=settings))


async def staff_socket(request: web.Request) -> web.StreamResponse:
    """``/ws/staff``: a logged-in clerk's console, from central's own origin only."""
    hub: Hub = request.app["hub"]
    staff = request.get("staff")
    if staff is None:
        raise web.HTTPUnauthorized(text="log in first\n")
    # Browsers send cookies with cross-site WebSocket handshakes: the Origin
    # check is what stops another site from driving a clerk's console.
    # (A missing Origin must not match an unset public_url: None == None.)
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin console connection refused\n")
    return await _serve(request, STAFF_TO_CENTRAL, hub.staff_message, hub.staff_connected,
                        hub.staff_disconnected,
                        lambda link: StaffPeer(staff, link, user_agent=request.headers.get("User-Agent")))


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin in (f"{request.scheme}://{request.host}", request.app["config"].public_url)


async def guest_socket(request: web.Request) -> web.StreamResponse:
    """``/ws/guest``: an interpreter's or colleague's browser, from central's own guest page. No account: the
    link's secret comes in its first message (central/live/guest_side.py)."""
    hub: Hub = request.app["hub"]
    if not _same_origin(request):
        raise web.HTTPForbidden(text="open the guest link in a browser; other sites cannot connect here\n")
    address = client_address(request, request.app["config"].trusted_proxies)
    if wait := request.app["guest_connects"].take(address):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"too many connections from this address; wait {seconds} s\n")
    return await _serve(request, GUEST_TO_CENTRAL, hub.guest_message, hub.guest_connected, hub.guest_disconnected,
                        GuestPeer)
