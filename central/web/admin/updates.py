"""Admin: the updates page. Start a rollout of a bundle to canary kiosks, open the next rings,
pause, resume or stop it; see how many kiosks stand where, per ring, and why it paused.

The bundles come from ``app["bundles"]`` (uploaded on the bundles page); the rules and actions are
central/updates/. Kiosks' states come from memory, like the fleet page's.
"""
from __future__ import annotations

import inspect
from collections import Counter

from aiohttp import web

from central.updates import control, words
from central.updates.book import NOT_REACHED, WAITING
from central.updates.control import RolloutError
from central.updates.rings import RINGS, WINDOWS
from central.web.admin import forms
from central.web.admin.fleet import _Times
from central.web.auth import admin_required
from protocol.updates import UPDATE_STATES

PAGE = "/admin/updates"
COLUMNS = (WAITING, *UPDATE_STATES, NOT_REACHED)
CAP_MIN, CAP_MAX = 64, 10_000_000  # kbit/s, as update.offer allows


async def _maybe_await(value):  # noqa: ANN001, ANN202 - the bundle store may answer either way
    return await value if inspect.isawaitable(value) else value


async def _bundles(request: web.Request) -> list:
    store = request.app.get("bundles")
    return list(await _maybe_await(store.list())) if store is not None else []


async def _page(request: web.Request, *, error: str | None = None, status: int = 200,
                form: dict | None = None) -> web.Response:
    _ = forms.translator(request)
    hub, db = request.app["hub"], request.app["db"]
    fleet = [k for k in await db.fleet.kiosks() if not k.kiosk.revoked]
    versions = {k.kiosk.id: (hub.fleet.kiosks[k.kiosk.id].version if k.kiosk.id in hub.fleet.kiosks else None)
                for k in fleet}
    locations = {k.kiosk.id: k.kiosk.location for k in fleet}
    rollout = hub.updates.rollout
    counts = hub.updates.counts(versions.items())
    rows = [{"ring": ring, "name": _(words.RINGS[ring]), "counts": counts.get(ring, Counter()),
             "total": sum(counts.get(ring, Counter()).values())} for ring in RINGS]
    pause_text = None
    if rollout is not None and rollout.pause is not None:
        p = rollout.pause
        kiosk = _("kiosk \"%(location)s\" (no. %(id)s)", location=locations.get(p.kiosk_id, "?"), id=p.kiosk_id)
        pause_text = words.pause(_, kiosk, p.state, p.fault, p.check)
    return forms.page(
        request, "admin/updates.html", status=status, rollout=rollout, rows=rows, columns=COLUMNS,
        headings={c: _(words.STATE_HEADINGS[c]) for c in COLUMNS}, pause_text=pause_text,
        bundles=await _bundles(request), kiosks=[(k.kiosk.id, k.kiosk.location, versions[k.kiosk.id],
                                                  k.kiosk.id in hub.kiosks) for k in fleet],
        history=await db.updates.rollouts(10), locations=locations, when=_Times(request), error=error,
        form=form or {"window": "outside_hours", "canary": set(), "bundle": "", "max_kbit_s": ""})


@admin_required
async def updates_page(request: web.Request) -> web.Response:
    return await _page(request)


def _ids(values: list[str]) -> set[int]:
    return {int(v) for v in values if v.isdigit() and len(v) <= 9}


@admin_required
async def start(request: web.Request) -> web.Response:
    _ = forms.translator(request)
    data = await request.post()
    form = {"bundle": forms.text(data, "bundle", 12), "canary": _ids(data.getall("canary", [])),
            "window": forms.text(data, "window", 20), "max_kbit_s": forms.text(data, "max_kbit_s", 12)}
    store = request.app.get("bundles")
    bundle = None
    if store is not None and form["bundle"].isdigit() and len(form["bundle"]) <= 9:
        bundle = await _maybe_await(store.get(int(form["bundle"])))
    known = {k.kiosk.id for k in await request.app["db"].fleet.kiosks() if not k.kiosk.revoked}
    cap = None
    try:
        if bundle is None:
            raise RolloutError(_("Choose a bundle. Bundles are uploaded on the bundles page."))
        if form["max_kbit_s"]:
            if not form["max_kbit_s"].isdigit() or not CAP_MIN <= int(form["max_kbit_s"]) <= CAP_MAX:
                raise RolloutError(_("The bandwidth cap is a whole number of kbit/s from %(low)s to %(high)s, or "
                                     "empty for none.", low=CAP_MIN, high=CAP_MAX))
            cap = int(form["max_kbit_s"])
        if form["window"] not in WINDOWS:
            raise RolloutError(_("Choose when kiosks may install: outside office hours, or as soon as they are "
                                 "idle."))
        await control.start(request.app, request["staff"], bundle, form["canary"] & known, form["window"], cap)
    except RolloutError as exc:
        return await _page(request, error=_(str(exc)), status=400, form=form)
    raise forms.see_other(PAGE, "rollout-started")


def _action(name: str):  # noqa: ANN202 - a handler
    @admin_required
    async def handler(request: web.Request) -> web.Response:
        _ = forms.translator(request)
        rollout_id = int(request.match_info["rollout_id"])
        staff = request["staff"]
        try:
            if name == "percent":
                value = forms.text(await request.post(), "percent", 4)
                percent = int(value) if value.isdigit() else 0
                await control.open_percent(request.app, staff, rollout_id, percent)
            elif name == "all":
                await control.open_all(request.app, staff, rollout_id)
            else:
                await getattr(control, name)(request.app, staff, rollout_id)
        except RolloutError as exc:
            return await _page(request, error=_(str(exc)), status=409)
        raise forms.see_other(PAGE, f"rollout-{name}")
    return handler


def routes() -> list[web.RouteDef]:
    one = PAGE + "/{rollout_id:[0-9]{1,9}}/"
    return [web.get(PAGE, updates_page), web.post(PAGE + "/start", start),
            *(web.post(one + name, _action(name)) for name in ("percent", "all", "pause", "resume", "stop"))]
