"""Admin: departments with their languages, office hours and appointment slots."""
from __future__ import annotations

from aiohttp import web

from central.fleet import settings as fleet_settings
from central.storage.database import Department
from central.web import consoles
from central.web.admin import forms, home_visit_settings, slot_settings
from central.web.admin.forms import FieldError
from central.web.auth import admin_required

LIST = "/admin/departments"


async def _find(request: web.Request) -> Department:
    slug = request.match_info["slug"]
    found = next((d for d in await request.app["db"].departments() if d.slug == slug), None)
    if found is None:
        raise web.HTTPNotFound(text="There is no such department.\n")
    return found


async def _refresh_hub(request: web.Request) -> None:
    request.app["hub"].set_departments(await request.app["db"].departments())
    await request.app["hub"].refresh_bookable()  # the slot settings decide whether kiosks offer appointments
    await consoles.refresh(request.app, resend=True)  # names, hours or (after a delete) memberships changed
    # Kiosks hear of the change at once: the departments with their names and state, then (for those
    # that offer every department, or offered a deleted one) their new settings.
    request.app["hub"].resend_departments()
    await request.app["db"].kiosk_settings.touch()
    await fleet_settings.push(request.app)


def _visits_in(request: web.Request, slug: str) -> int:
    """Citizens waiting in or talking to this department right now."""
    return sum(1 for v in request.app["hub"].rooms.all() if v.department == slug)


@admin_required
async def list_page(request: web.Request) -> web.Response:
    db = request.app["db"]
    staff_counts: dict[str, int] = {}
    for member in await db.all_staff():
        for slug in member.departments:
            staff_counts[slug] = staff_counts.get(slug, 0) + 1
    return forms.page(request, "admin/departments.html", departments=await db.departments(),
                      staff_counts=staff_counts)


def _form_page(request: web.Request, *, department: Department | None, values: dict[str, str],
               errors: dict[str, str], status: int = 200) -> web.Response:
    return forms.page(request, "admin/department_form.html", status=status, department=department,
                      values=values, errors=errors)


@admin_required
async def new_page(request: web.Request) -> web.Response:
    _ = forms.translator(request)
    values = {"slug": "", "name": "", "languages": "de", "sort_order": "0",
              "hours": forms.format_week(None, _), "closed_days": "", **slot_settings.values(None),
              **home_visit_settings.values(None)}
    return _form_page(request, department=None, values=values, errors={})


@admin_required
async def edit_page(request: web.Request) -> web.Response:
    department = await _find(request)
    _ = forms.translator(request)
    values = {"slug": department.slug, "name": department.name, "languages": ", ".join(department.languages),
              "sort_order": str(department.sort_order), "hours": forms.format_week(department.hours, _),
              "closed_days": forms.format_closed_days(department.hours),
              **slot_settings.values((await request.app["db"].bookings.settings()).get(department.slug)),
              **home_visit_settings.values(department)}
    return _form_page(request, department=department, values=values, errors={})


async def _save(request: web.Request, department: Department | None) -> web.Response:
    _ = forms.translator(request)
    db = request.app["db"]
    form = await request.post()
    values = {name: forms.text(form, name, 4000) for name in ("slug", "name", "languages", "sort_order",
                                                               "hours", "closed_days")}
    values.update(slot_settings.read(form))
    values.update(home_visit_settings.read(form))
    if department is not None:
        values["slug"] = department.slug  # the slug names the department in links and statistics
    errors: dict[str, str] = {}
    parsed: dict[str, object] = {}
    checks = {"name": lambda v: forms.required(v, _, 120),
              "languages": lambda v: forms.parse_languages(v, _),
              "sort_order": lambda v: forms.parse_sort_order(v, _)}
    if department is None:
        checks["slug"] = lambda v: forms.parse_slug(v, _)
    for name, check in checks.items():
        try:
            parsed[name] = check(values[name])
        except FieldError as exc:
            errors[name] = str(exc)
    if department is None and "slug" not in errors and any(d.slug == values["slug"] for d in await db.departments()):
        errors["slug"] = _("A department with this short name already exists.")
    timezone = department.hours.timezone if department else request.app["config"].timezone
    hours, hour_errors = forms.parse_hours(values["hours"], values["closed_days"], timezone, _)
    errors.update(hour_errors)
    slots, slot_errors = slot_settings.parse(values, _)
    errors.update(slot_errors)
    (phone, online_cap), home_errors = home_visit_settings.parse(values, _)
    errors.update(home_errors)
    if errors:
        return _form_page(request, department=department, values=values, errors=errors, status=400)
    await db.save_department(values["slug"], parsed["name"], parsed["languages"], hours,
                             sort_order=parsed["sort_order"])
    await db.bookings.save_settings(values["slug"], slots)  # bookings made before stay valid
    await db.home_visits.save(values["slug"], phone, online_cap)
    await _refresh_hub(request)
    raise forms.see_other(LIST, "department-created" if department is None else "department-saved")


@admin_required
async def create(request: web.Request) -> web.Response:
    return await _save(request, None)


@admin_required
async def update(request: web.Request) -> web.Response:
    return await _save(request, await _find(request))


async def _delete_page(request: web.Request, department: Department, error: str | None = None,
                       status: int = 200) -> web.Response:
    staff = [m for m in await request.app["db"].all_staff() if department.slug in m.departments]
    return forms.page(request, "admin/department_delete.html", status=status, department=department,
                      staff_count=len(staff), visits=_visits_in(request, department.slug), error=error)


@admin_required
async def delete_page(request: web.Request) -> web.Response:
    return await _delete_page(request, await _find(request))


@admin_required
async def delete(request: web.Request) -> web.Response:
    department = await _find(request)
    if _visits_in(request, department.slug):
        _ = forms.translator(request)
        return await _delete_page(request, department, status=400, error=_(
            "Citizens are waiting in or talking to this department right now. Delete it once they are done."))
    await request.app["db"].delete_department(department.slug)
    await request.app["db"].bookings.save_settings(department.slug, None)
    await _refresh_hub(request)
    raise forms.see_other(LIST, "department-deleted")


def routes() -> list[web.RouteDef]:
    slug = "{slug:[a-z0-9-]{1,40}}"
    return [web.get(LIST, list_page), web.get(f"{LIST}/new", new_page), web.post(f"{LIST}/new", create),
            web.get(f"{LIST}/{slug}/edit", edit_page), web.post(f"{LIST}/{slug}/edit", update),
            web.get(f"{LIST}/{slug}/delete", delete_page), web.post(f"{LIST}/{slug}/delete", delete)]
