"""Admin: enrol a unit by the code on its screen (the Kiosks page's form, or the QR code's link).

``GET /admin/kiosks/enrol?code=…`` is what the QR code on the unit opens (after the login, the
admin comes back to it): the form with the code filled in and the unit it belongs to. The POST
claims the unit; central sends it its token over the unit's own connection, so nobody sees it.
"""
from __future__ import annotations

import math

from aiohttp import web

from central.fleet.claims import Claims, Enrolled, Known, Lookup, NeedsConfirmation
from central.fleet.enrolment import CLAIM_PATH
from central.storage.database import Department
from central.web.admin import fleet, forms
from central.web.admin.forms import FieldError, Translate
from central.web.auth import admin_required
from central.web.client import client_address


def _departments(all_departments: list[Department], chosen: list[str] | None) -> list[dict]:
    return [{"slug": d.slug, "name": d.name, "checked": chosen is None or d.slug in chosen} for d in all_departments]


async def _form(request: web.Request, *, typed: str = "", location: str = "", chosen: list[str] | None = None,
                lookup: Lookup | None = None, known: Known | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> web.Response:
    unit = lookup.unit if lookup else None
    response = forms.page(request, "admin/kiosk_enrol.html", status=status, code=lookup.code if unit else typed,
                          location=location, departments=_departments(await request.app["db"].departments(), chosen),
                          unit=unit, known=known, errors=errors or {})
    if lookup is not None and lookup.wait_s > 0:
        response.headers["Retry-After"] = str(math.ceil(lookup.wait_s))
    return response


def _look_up(request: web.Request, typed: str) -> tuple[Lookup, dict[str, str]]:
    """The code's unit, with the message for the code field when there is none."""
    _ = forms.translator(request)
    claims: Claims = request.app["claims"]
    lookup = claims.look_up(typed, request["staff"].id,
                            client_address(request, request.app["config"].trusted_proxies))
    if lookup.wait_s > 0:
        minutes = math.ceil(lookup.wait_s / 60)
        return lookup, {"code": _("Too many wrong codes. For safety, codes are not checked for the next %(minutes)s "
                                  "minutes; then enter the code shown on the unit's screen.", minutes=minutes)}
    if lookup.unit is None:
        return lookup, {"code": _no_unit(_)}
    return lookup, {}


def _no_unit(_: Translate) -> str:
    return _("No unit is showing this code right now. Check the code on the unit's screen; a code lasts "
             "10 minutes.")


@admin_required
async def enrol_page(request: web.Request) -> web.Response:
    typed = request.query.get("code", "")[:40]
    if not typed:
        return await _form(request)
    lookup, errors = _look_up(request, typed)
    known = await Claims.known(request.app["db"], lookup.unit) if lookup.unit else None
    status = 429 if lookup.wait_s > 0 else 400 if errors else 200
    return await _form(request, typed=typed, lookup=lookup, known=known, errors=errors, status=status)


def _parse_departments(form, all_departments: list[Department], _: Translate) -> list[str] | None:  # noqa: ANN001
    """The ticked departments in central's order; None when all are ticked (new ones are offered too)."""
    ticked = set(form.getall("departments", []))
    chosen = [d.slug for d in all_departments if d.slug in ticked]
    if not chosen:
        raise FieldError(_("Pick at least one department for this kiosk."))
    return None if len(chosen) == len(all_departments) else chosen


@admin_required
async def enrol(request: web.Request) -> web.Response:
    _ = forms.translator(request)
    db = request.app["db"]
    form = await request.post()
    typed = forms.text(form, "code", 40)
    location = forms.text(form, "location", 1000)
    confirmed = forms.text(form, "confirm_kiosk", 12)
    all_departments = await db.departments()
    chosen: list[str] | None = [d for d in form.getall("departments", []) if isinstance(d, str)]
    lookup, errors = _look_up(request, typed)
    if lookup.unit is None:
        status = 429 if lookup.wait_s > 0 else 400
        return await _form(request, typed=typed, location=location, chosen=chosen, lookup=lookup, errors=errors,
                           status=status)
    known = await Claims.known(db, lookup.unit)
    if known is None:  # a new kiosk: its location and departments are needed
        try:
            forms.required(location, _, 120)
        except FieldError as exc:
            errors["location"] = str(exc)
        try:
            chosen = _parse_departments(form, all_departments, _)
        except FieldError as exc:
            errors["departments"] = str(exc)
        if errors:
            return await _form(request, typed=typed, location=location, chosen=chosen, lookup=lookup, errors=errors,
                               status=400)
    try:
        done = await request.app["claims"].claim(
            db, lookup.code, staff_id=request["staff"].id, location=location, departments=chosen,
            confirmed_kiosk=int(confirmed) if confirmed.isdigit() else None,
            on_new_token=lambda kiosk_id: _disconnect(request, kiosk_id))
    except NeedsConfirmation as needed:
        return await _form(request, typed=typed, location=location, chosen=chosen, lookup=lookup,
                           known=needed.known)
    if done is None:  # claimed by someone else, expired or gone in the meantime
        return await _form(request, typed=typed, location=location, chosen=chosen, errors={"code": _no_unit(_)},
                           status=400)
    return _enrolled_page(request, done)


def _disconnect(request: web.Request, kiosk_id: int) -> None:
    if (peer := request.app["hub"].kiosks.get(kiosk_id)) is not None:
        peer.link.close()  # its old token no longer works


def _enrolled_page(request: web.Request, done: Enrolled) -> web.Response:
    return forms.page(request, "admin/kiosk_enrolled.html", enrolled=done, kiosk_url=f"{fleet.LIST}/{done.kiosk_id}")




def routes() -> list[web.RouteDef]:
    return [web.get(CLAIM_PATH, enrol_page), web.post(CLAIM_PATH, enrol)]
