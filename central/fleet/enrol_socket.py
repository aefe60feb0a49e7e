"""``/ws/enrol``: a unit without a token waits here until an admin claims the code it shows.

The connection can do nothing but wait: it says ``enrol.hello`` once, may ``ping``, and gets
``enrol.code`` (again whenever the code runs out) and finally ``enrol.done`` with its token.
Everything else is answered with a typed error, and a unit that keeps sending wrong messages
is closed. How many may wait is capped, all together and per client address, before the
WebSocket is even accepted.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from central.fleet.claims import Claims
from central.fleet.enrolment import EnrolmentRefused, Enrolments, Limits, PendingUnit
from central.live.link import Link
from central.live.sockets import HEARTBEAT_S
from central.web.client import client_address
from protocol import fleet as f
from protocol import messages as m
from protocol.codec import MAX_FRAME_BYTES, decode, error_frame
from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import ENROL_TO_CENTRAL

log = logging.getLogger(__name__)

# A waiting unit sends a hello and pings: tiny frames. Up to twice the protocol's limit is read and
# answered with too_large; beyond it aiohttp closes the socket (1009) without reading the frame.
TRANSPORT_LIMIT = 2 * MAX_FRAME_BYTES
# Refused messages a waiting unit may send before it is closed: a unit that keeps sending them has
# a bug or is not a unit, and either way it should not cost central more work.
MAX_REFUSED = 10
ENROL_PATH = "/ws/enrol"
MAX_BASE_URL = 200


async def enrol_socket(request: web.Request) -> web.StreamResponse:
    enrolments: Enrolments = request.app["enrolments"]
    config = request.app["config"]
    address = client_address(request, config.trusted_proxies)
    base = config.public_url or f"{request.scheme}://{request.host}"
    if len(base) > MAX_BASE_URL:  # it goes into the code's link (EnrolCodeOffer.claim_url, 300 characters)
        raise web.HTTPBadRequest(text="the Host header is too long; connect to central by its usual name\n")
    try:
        unit = enrolments.admit(address, base)
    except EnrolmentRefused as refused:
        status = web.HTTPServiceUnavailable if refused.status == 503 else web.HTTPTooManyRequests
        raise status(headers={"Retry-After": str(refused.retry_after_s)}, text=refused.text + "\n") from None
    try:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=TRANSPORT_LIMIT, compress=False)
        await ws.prepare(request)
        sockets = request.app["websockets"]  # closed at once on shutdown, like the kiosks'
        sockets.add(ws)
        try:
            await _wait_for_claim(request, ws, unit, enrolments)
        finally:
            sockets.discard(ws)
    finally:
        enrolments.release(unit)
    return ws


async def _wait_for_claim(request: web.Request, ws: web.WebSocketResponse, unit: PendingUnit,
                          enrolments: Enrolments) -> None:
    def close() -> asyncio.Future:
        code, reason = unit.farewell
        return ws.close(code=code, message=reason.encode()[:120])

    link = Link(ws.send_str, close, abort=lambda: _abort(request))
    unit.link = link
    refused = 0
    try:
        async for frame in ws:
            if link.closed:
                break
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                _handle(decode(frame.data, ENROL_TO_CENTRAL), unit, enrolments)
            except ProtocolError as err:
                link.send(error_frame(err))
                refused += 1
                if refused >= MAX_REFUSED:
                    unit.close(1008, f"{MAX_REFUSED} refused messages; a unit waiting for enrolment sends only "
                                     "enrol.hello (once) and ping")
    finally:
        await link.wait_closed()


def _handle(message: m.Message, unit: PendingUnit, enrolments: Enrolments) -> None:
    if isinstance(message, m.Ping):
        unit.send(m.Pong(type="pong"))
    elif isinstance(message, f.EnrolHello):
        if unit.serial is not None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "enrol.hello was sent already; wait for the code to be "
                                                       "claimed", ref=message.type)
        enrolments.hello(unit, message)


def _abort(request: web.Request) -> None:
    """Drop a unit that does not read its frames (see central.live.link)."""
    if request.transport is not None:
        request.transport.abort()


def install(app: web.Application, limits: Limits | None = None) -> None:
    """Add ``/ws/enrol``, the pending units' registry (``app["enrolments"]``) and the admin's side of
    it (``app["claims"]``) to central."""
    app["enrolments"] = Enrolments(limits or Limits())
    app["claims"] = Claims(app["enrolments"])
    app.router.add_get(ENROL_PATH, enrol_socket)

    async def start(app: web.Application) -> None:
        app["enrol_sweeper"] = asyncio.get_running_loop().create_task(app["enrolments"].keep_sweeping())

    async def stop(app: web.Application) -> None:
        if "enrol_sweeper" in app:
            app["enrol_sweeper"].cancel()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
