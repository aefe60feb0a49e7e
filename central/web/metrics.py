"""``GET /metrics`` for the city's Prometheus, behind the bearer token ``metrics_token``."""
from __future__ import annotations

import asyncio
import hmac

from aiohttp import web

from central.cluster.web import leads
from central.fleet import metrics
from central.web.admin.fleet import SLICE, fleet_lines


async def metrics_page(request: web.Request) -> web.Response:
    token = request.app["config"].metrics_token
    if token is None:
        raise web.HTTPNotFound(text="/metrics is switched off: set metrics_token (at least 32 characters) in "
                                    "central's configuration and the same token in Prometheus (docs/fleet.md)\n")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="amtsklingel metrics"'},
                                   text="send the metrics_token of central's configuration as "
                                        "'Authorization: Bearer <token>' (docs/fleet.md)\n")
    if not leads(request):
        edge = request.app.get("edge")
        text = metrics.not_leading(len(edge.relayed) if edge is not None else 0)
        return _page(text)
    hub = request.app["hub"]
    waiting = {slug: len(hub.rooms.waiting(slug)) for slug in hub.departments}
    online = {slug: 0 for slug in hub.departments}
    for peer in hub.staff.values():
        for slug in peer.staff.departments & online.keys():
            online[slug] += 1
    lines, page = await fleet_lines(request), metrics.Exposition()
    for start in range(0, len(lines), SLICE):  # kiosks and consoles are served between slices
        page.add_kiosks(lines[start:start + SLICE])
        await asyncio.sleep(0)
    rollout = hub.updates.rollout
    counts = hub.updates.counts((line.kiosk.id, line.state.version) for line in lines) if rollout is not None else {}
    browsers = (await request.app["db"].staff_browsers.all()).values()
    text = page.text(waiting, online, rollout, counts, clerk_browsers=browsers,
                     bookings=await request.app["db"].bookings.totals())
    return _page(text)


def _page(text: str) -> web.Response:
    return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE,
                                                     "Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    return [web.get("/metrics", metrics_page)]
