"""Admin: the fleet page (every kiosk's state at a glance) and one kiosk's detail page.

Everything shown comes from the registry in memory (central/fleet/registry.py); a page makes one
database query, for the list of kiosks, however many kiosks there are.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from central.fleet import view
from central.fleet.fault_words import fault_text
from central.fleet.lights import LIGHTS
from central.web.admin import forms, kiosk_settings
from central.web.admin.fleet_cells import light_cell, light_cells, update_cell, update_text
from central.web.auth import admin_required

LIST = "/admin/fleet"
PER_PAGE = 100
SLICE = 250  # kiosks judged at a time between turns of the event loop
PER_PAGE_MAX = 5000
FLAGGED_MAX = 50  # at the top of the page; the Offline filter lists them all


async def fleet_lines(request: web.Request) -> list[view.KioskLine]:
    """Every kiosk not revoked, as the registry knows it now (one database query)."""
    hub = request.app["hub"]
    open_now = view.open_departments(hub.departments.values(), hub.now())
    found, out = await request.app["db"].fleet.kiosks(), []
    for start in range(0, len(found), SLICE):  # kiosks and consoles are served between slices
        out += view.lines(found[start:start + SLICE], hub.fleet, open_now, hub.updates)
        await asyncio.sleep(0)
    return out


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high) if value is not None else default
    except ValueError:
        return default


class _Times:
    """Unix seconds as the city reads them: today's as a time, older ones with the date."""

    def __init__(self, request: web.Request):
        self.zone = ZoneInfo(request.app["config"].timezone)
        self.today = dt.datetime.now(self.zone).date()

    def __call__(self, unix_s: float | None) -> str:
        if unix_s is None:
            return ""
        at = dt.datetime.fromtimestamp(unix_s, self.zone)
        return at.strftime("%H:%M") if at.date() == self.today else at.strftime("%Y-%m-%d %H:%M")


@admin_required
async def fleet_page(request: web.Request) -> web.Response:
    show = request.query.get("show", "all")
    if show not in view.FILTERS:
        show = "all"
    per_page = _int(request.query.get("per_page"), PER_PAGE, 10, PER_PAGE_MAX)
    every = view.ordered(await fleet_lines(request))
    flagged = [line for line in every if line.flagged]
    shown = view.select(every, show)
    pages = max(1, -(-len(shown) // per_page))
    page_no = _int(request.query.get("page"), 1, 1, pages)
    counts = {"all": len(every), "online": sum(line.state.online for line in every),
              "offline": sum(not line.state.online for line in every),
              "problems": sum(line.needs_attention for line in every), "flagged": len(flagged)}
    return await forms.page_in_slices(request, "admin/fleet.html", lines=shown[(page_no - 1) * per_page:page_no * per_page],
                      flagged=flagged, flagged_max=FLAGGED_MAX, counts=counts, show=show, page_no=page_no, pages=pages, per_page=per_page,
                      light_names=LIGHTS, when=_Times(request), light_cells=light_cells, update_cell=update_cell)


@admin_required
async def detail_page(request: web.Request) -> web.Response:
    kiosk_id = int(request.match_info["kiosk_id"])
    found = await request.app["db"].fleet.kiosks(only_id=kiosk_id)
    if not found:
        raise web.HTTPNotFound(text="There is no such kiosk; see the fleet page for every kiosk.\n")
    hub = request.app["hub"]
    kiosk = found[0].kiosk
    line = view.line(found[0], hub.fleet, view.open_departments(hub.departments.values(), hub.now()),
                     updates=hub.updates)
    state = line.state
    faults = sorted(state.health.faults if state.health is not None else [], key=lambda x: x.last_s_ago)
    controls = await kiosk_settings.controls_context(request, kiosk)  # the settings form and the actions
    return forms.page(request, "admin/fleet_detail.html", **controls, state=state,
                      line=line, faults=faults,
                      live_faults=sorted(state.device_faults.items()), light_names=dict(LIGHTS),
                      department_names={d.slug: d.name for d in hub.departments.values()}, when=_Times(request),
                      light_cell=light_cell, update_text=update_text, fault_text=fault_text)


def routes() -> list[web.RouteDef]:
    return [web.get(LIST, fleet_page), web.get(LIST + "/{kiosk_id:[0-9]{1,9}}", detail_page)]
