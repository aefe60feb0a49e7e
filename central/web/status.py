"""Public status: which offices are open, busy or closed, and how long one waits. No login."""
from __future__ import annotations

from aiohttp import web

from central.web.render import render


def _rows(request: web.Request) -> list[dict]:
    rows = []
    for s in request.app["hub"].status():
        if not s.open:
            state = "closed"
        elif s.clerks_available > 0:
            state = "open"
        elif s.clerks_busy > 0:
            state = "busy"
        else:
            state = "unstaffed"  # open by the hours, but nobody is logged in
        rows.append({"slug": s.department.slug, "name": s.department.name, "state": state, "open": s.open,
                     "next_opening": s.next_opening.isoformat() if s.next_opening else None,
                     "clerks_available": s.clerks_available, "clerks_busy": s.clerks_busy,
                     "waiting": s.waiting, "typical_wait_s": s.typical_wait_s,
                     "languages": list(s.department.languages),
                     "hours": s.department.hours.describe_week()})
    return rows


async def status_json(request: web.Request) -> web.Response:
    rows = _rows(request)
    for r in rows:
        r.pop("hours")
    return web.json_response({"departments": rows}, headers={"Cache-Control": "no-store"})


async def status_page(request: web.Request) -> web.Response:
    return render(request, "status.html", departments=_rows(request))


def routes() -> list[web.RouteDef]:
    return [web.get("/status", status_page), web.get("/api/status", status_json)]
