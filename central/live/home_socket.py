"""``/ws/visit``: a citizen's browser at home. Public (no account), so limited per client address.

Before the socket opens: the Origin must be central's own (another site cannot drive a visit from a
citizen's browser), and the address may open only so many connections, so fast (central/live/limits.py).
The address is used for those limits only: never logged, never stored, never sent on.
"""
from __future__ import annotations

from aiohttp import web

from central.live.hub import HomePeer, Hub
from central.live.limits import HOME_CONNECTS, HOME_OPEN_PER_ADDRESS, Buckets, retry_after_s
from central.live.sockets import _serve
from central.web.client import client_address
from protocol.home import HOME_TO_CENTRAL


def install(app: web.Application) -> None:
    app["home_connects"] = Buckets(HOME_CONNECTS)  # per client address
    app.router.add_get("/ws/visit", home_socket)


async def home_socket(request: web.Request) -> web.StreamResponse:
    hub: Hub = request.app["hub"]
    origin = request.headers.get("Origin")
    if origin is None or origin not in (f"{request.scheme}://{request.host}", request.app["config"].public_url):
        raise web.HTTPForbidden(text="visits from home connect from central's own page (/visit) only\n")
    address = client_address(request, request.app["config"].trusted_proxies)
    if sum(1 for p in hub.homes.values() if p.address == address) >= HOME_OPEN_PER_ADDRESS:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "30"},
                                      text="too many visits open from this address; close one and try again\n")
    if wait := request.app["home_connects"].take(address):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"too many connections from this address; try again in {seconds} s\n")
    return await _serve(request, HOME_TO_CENTRAL, hub.home_message, hub.home_connected, hub.home_disconnected,
                        lambda link: HomePeer(link, address))
