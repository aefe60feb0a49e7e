"""``/ws/visit``: a citizen's browser at home. Public (no account), so limited per client address.

Before the socket opens: the Origin must be central's own (another site cannot drive a visit from a
citizen's browser), and the address may open only so many connections, so fast (central/live/limits.py).
The address is used for those limits only: never logged, never stored, never sent on.
"""
from __future__ import annotations

from aiohttp import web

from central.live.limits import HOME_CONNECTS
from central.live.shared_limits import LocalLimit
from central.live.sockets import serve
from central.web.client import client_address


def install(app: web.Application) -> None:
    # Per client address; with several centrals central/app.py keeps it in Valkey instead.
    app["home_connects"] = LocalLimit(HOME_CONNECTS)
    app.router.add_get("/ws/visit", home_socket)


async def home_socket(request: web.Request) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if origin is None or origin not in (f"{request.scheme}://{request.host}", request.app["config"].public_url):
        raise web.HTTPForbidden(text="visits from home connect from central's own page (/visit) only\n")
    # The open visits per address and the connection rate are counted on the leader (central/live/admission.py).
    return await serve(request, "home", {"address": client_address(request, request.app["config"].trusted_proxies)})
