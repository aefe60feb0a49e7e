"""Admin: the audit log, newest first (who changed what, and when)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from central.web.admin import forms
from central.web.auth import admin_required

SHOWN = 500


@admin_required
async def audit_page(request: web.Request) -> web.Response:
    zone = ZoneInfo(request.app["config"].timezone)
    locations = {k.id: k.location for k in await request.app["db"].kiosks()}
    entries = []
    for e in await request.app["db"].audit.recent(SHOWN):
        kind, _, ident = e.target.partition(":")
        kiosk_id = int(ident) if kind == "kiosk" and ident.isdigit() else None
        entries.append({"at": dt.datetime.fromtimestamp(e.at, zone).strftime("%Y-%m-%d %H:%M:%S"),
                        "who": e.staff_name, "action": e.action, "kiosk_id": kiosk_id,
                        "kiosk": locations.get(kiosk_id, ""), "all": e.target == "kiosks:all", "detail": e.detail})
    return forms.page(request, "admin/audit.html", entries=entries, shown=SHOWN)


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/audit", audit_page)]
