"""``GET /console/bookings``: today's booked slots of the clerk's departments, for the console (static/console/
bookings.js). Counts only: how many booked each slot and how many came; nothing about who."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from central.web.auth import login_required


def _today(zone: str, now: dt.datetime) -> tuple[int, int]:
    """[start, end) of today in ``zone``, Unix seconds."""
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


@login_required
async def today_json(request: web.Request) -> web.Response:
    hub, staff = request.app["hub"], request["staff"]
    departments = [d for d in hub.departments.values() if d.slug in staff.departments]
    now = hub.now()
    slots = []
    for zone in sorted({d.hours.timezone for d in departments}):
        since, until = _today(zone, now)
        slugs = [d.slug for d in departments if d.hours.timezone == zone]
        slots += await request.app["db"].bookings.day_slots(slugs, since, until)
    slots.sort(key=lambda s: (s.slot_start, s.department))
    return web.json_response({
        "server_time": now.timestamp(),
        "slots": [{"department": s.department, "name": hub.departments[s.department].name,
                   "time_zone": hub.departments[s.department].hours.timezone,
                   "slot_start": s.slot_start, "slot_end": s.slot_end, "booked": s.booked,
                   "checked_in": s.checked_in} for s in slots]}, headers={"Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    return [web.get("/console/bookings", today_json)]
