"""Visits from home: the public pages. No account, nothing installed, nothing kept.

``/visit`` lists the departments (open ones to choose, closed ones with their hours and next opening);
``/visit/{slug}`` is the link a city puts on its website for one department: the short notice, then
the page's script (static/home/) checks camera and microphone, waits in the waiting room over
``/ws/visit`` and holds the call.
"""
from __future__ import annotations

import re

from aiohttp import web

from central.citizen.pages import render_citizen
from central.live.core import DepartmentStatus


def _department(s: DepartmentStatus) -> dict:
    return {"slug": s.department.slug, "name": s.department.name, "open": s.open,
            "next_opening": s.next_opening, "waiting": s.waiting, "typical_wait_s": s.typical_wait_s,
            "clerks": s.clerks_available + s.clerks_busy, "hours": s.department.hours.describe_week(),
            "phone": s.department.phone, "phone_tel": re.sub(r"[^0-9+]", "", s.department.phone)}


async def departments_page(request: web.Request) -> web.Response:
    departments = [_department(s) for s in request.app["hub"].status()]
    return render_citizen(request, "citizen/home_departments.html", departments=departments)


async def department_page(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    found = next((s for s in request.app["hub"].status() if s.department.slug == slug), None)
    if found is None:
        return render_citizen(request, "citizen/home_unknown.html", status=404)
    return render_citizen(request, "citizen/home_visit.html", department=_department(found))


def routes() -> list[web.RouteDef]:
    return [web.get("/visit", departments_page), web.get("/visit/{slug}", department_page)]
