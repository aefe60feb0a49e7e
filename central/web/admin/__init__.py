"""Admin area (administrators only): overview with anonymous statistics, departments, staff, kiosks, bundles."""
from __future__ import annotations

import datetime as dt

from aiohttp import web

from central.web.admin import audit, bundles, departments, enrol, fleet, forms, kiosk_settings, kiosks, staff, updates
from central.web.auth import admin_required

STATS_DAYS = 30


@admin_required
async def overview(request: web.Request) -> web.Response:
    db = request.app["db"]
    today = forms.today(request)
    names = {d.slug: d.name for d in await db.departments()}
    rows = [{"day": s.day.isoformat(), "department": names.get(s.department, s.department), "visits": s.visits,
             "calls": s.calls, "median_wait": forms.format_duration(s.median_wait_s),
             "median_duration": forms.format_duration(s.median_duration_s), "call_failures": s.call_failures,
             "today": s.day == today}
            for s in await db.daily_stats(since=today - dt.timedelta(days=STATS_DAYS))]
    bookings = [{"day": b.day.isoformat(), "department": names.get(b.department, b.department), "booked": b.booked,
                 "cancelled": b.cancelled, "kept": b.kept, "missed": b.missed, "today": b.day == today}
                for b in await db.bookings.daily(since=today - dt.timedelta(days=STATS_DAYS))]
    return forms.page(request, "admin/overview.html", stats=rows, today=today.isoformat(), bookings=bookings,
                      stats_days=STATS_DAYS, counts={"departments": len(names), "staff": len(await db.all_staff()),
                                                     "kiosks": len(await db.kiosks())})


def routes() -> list[web.RouteDef]:
    return [web.get("/admin", overview), *departments.routes(), *staff.routes(), *kiosks.routes(), *enrol.routes(),
            *kiosk_settings.routes(), *audit.routes(), *fleet.routes(), *bundles.routes(),
            *updates.routes()]


__all__ = ["routes"]
