"""What HAProxy and clients see of leadership: ``GET /health/leader`` (who serves pages and live state),
``GET /health/ws`` (who takes WebSockets: the leader and every edge that relays to it, central/cluster/edge.py),
and WebSockets refused on a central that can do neither."""
from __future__ import annotations

from aiohttp import web

from central.cluster.leadership import Leadership

# 1013 Try Again Later: the kiosk's and console's reconnect logic simply retries, through the load balancer.
STANDBY_CLOSE_CODE = 1013
STANDBY_REASON = b"standby central; reconnect through the load balancer"
# What an edge relays to the leader; the rest (enrolment of new units) is served by the leader only.
RELAYED_PATHS = frozenset({"/ws/kiosk", "/ws/staff", "/ws/guest", "/ws/visit"})


def _leadership(request: web.Request) -> Leadership | None:
    return request.app.get("leadership")


def leads(request: web.Request) -> bool:
    """One central on its own always leads; with several, the one holding the lease."""
    leadership = _leadership(request)
    return leadership is None or leadership.leading


async def health_leader(request: web.Request) -> web.Response:
    """200 on the central that serves now, 503 on a standby: HAProxy's ``option httpchk`` sends traffic here."""
    if leads(request):
        return web.Response(text="leader\n", headers={"Cache-Control": "no-store"})
    return web.Response(status=503, text="standby\n", headers={"Cache-Control": "no-store"})


def relays(request: web.Request) -> bool:
    """This central does not lead but relays WebSockets to a leader that listens (central/cluster/edge.py)."""
    edge = request.app.get("edge")
    return edge is not None and edge.ready


async def health_ws(request: web.Request) -> web.Response:
    """200 on the leader and on every edge that relays to it: HAProxy spreads WebSockets over these."""
    if leads(request):
        return web.Response(text="leader\n", headers={"Cache-Control": "no-store"})
    if relays(request):
        return web.Response(text="edge\n", headers={"Cache-Control": "no-store"})
    return web.Response(status=503, text="standby\n", headers={"Cache-Control": "no-store"})


@web.middleware
async def refuse_websockets_on_standby(request: web.Request, handler):
    """A kiosk or console that reaches a central which neither leads nor relays to a leader (nobody leads, or
    Valkey is away) is told so with a close code it retries on, instead of joining empty rooms."""
    if request.headers.get("Upgrade", "").lower() == "websocket" and not leads(request) and not (
            request.path in RELAYED_PATHS and relays(request)):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=STANDBY_CLOSE_CODE, message=STANDBY_REASON)
        return ws
    return await handler(request)


def routes() -> list[web.RouteDef]:
    return [web.get("/health/leader", health_leader), web.get("/health/ws", health_ws)]
