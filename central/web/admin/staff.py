"""Admin: staff accounts (clerks and administrators) and their departments."""
from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from central import passwords
from central.passwords import PasswordsBusy
from central.storage.database import Staff
from central.web import consoles
from central.web.admin import forms
from central.web.admin.forms import FieldError
from central.web.auth import SESSION_COOKIE, admin_required

LIST = "/admin/staff"
MAX_PASSWORD = 1024  # the login form reads no more than this


async def _find(request: web.Request) -> Staff:
    found = await request.app["db"].staff(int(request.match_info["staff_id"]))
    if found is None:
        raise web.HTTPNotFound(text="There is no such staff member.\n")
    return found


@admin_required
async def list_page(request: web.Request) -> web.Response:
    db = request.app["db"]
    names = {d.slug: d.name for d in await db.departments()}
    members = await db.all_staff()
    waiting = await request.app["login_throttle"].waiting(m.username for m in members)
    return forms.page(request, "admin/staff.html", members=members, department_names=names, waiting=waiting,
                      browsers=await db.staff_browsers.all())


async def _form_page(request: web.Request, *, member: Staff | None, values: dict, errors: dict[str, str],
                     status: int = 200) -> web.Response:
    return forms.page(request, "admin/staff_form.html", status=status, member=member, values=values,
                      errors=errors, departments=await request.app["db"].departments(),
                      is_self=member is not None and member.id == request["staff"].id)


@admin_required
async def new_page(request: web.Request) -> web.Response:
    values = {"username": "", "display_name": "", "role": "clerk", "departments": [], "active": True}
    return await _form_page(request, member=None, values=values, errors={})


@admin_required
async def edit_page(request: web.Request) -> web.Response:
    member = await _find(request)
    values = {"username": member.username, "display_name": member.display_name, "role": member.role,
              "departments": sorted(member.departments), "active": member.active}
    return await _form_page(request, member=member, values=values, errors={})


async def _save(request: web.Request, member: Staff | None) -> web.Response:
    _ = forms.translator(request)
    db = request.app["db"]
    form = await request.post()
    known = {d.slug for d in await db.departments()}
    values = {"username": member.username if member else forms.text(form, "username", 200),
              "display_name": forms.text(form, "display_name", 1000),
              "role": forms.text(form, "role", 20),
              "departments": [s for s in form.getall("departments", []) if s in known],
              "active": member is None or form.get("active") == "on"}
    password = str(form.get("password", ""))
    errors: dict[str, str] = {}
    if member is None:
        if not forms.USERNAME_RE.fullmatch(values["username"]):
            errors["username"] = _("Use 2 to 64 letters, digits, dots, hyphens, underscores or @.")
        elif any(m.username == values["username"] for m in await db.all_staff()):
            errors["username"] = _("This username is taken.")
    try:
        forms.required(values["display_name"], _, 120)
    except FieldError as exc:
        errors["display_name"] = str(exc)
    if values["role"] not in forms.ROLES:
        errors["role"] = _("Choose clerk or administrator.")
    if password or member is None:
        if len(password) < passwords.MIN_LENGTH:
            errors["password"] = _("The password needs at least %(count)s characters.", count=passwords.MIN_LENGTH)
        elif len(password) > MAX_PASSWORD:
            errors["password"] = _("At most %(count)s characters.", count=MAX_PASSWORD)
    if member is not None and member.id == request["staff"].id and (not values["active"] or
                                                                     values["role"] != "admin"):
        errors["active"] = _("You cannot deactivate your own account or take away your own administrator "
                             "role. Ask another administrator to do it.")
        values["active"], values["role"] = member.active, member.role
    if errors:
        return await _form_page(request, member=member, values=values, errors=errors, status=400)
    try:
        password_hash = await request.app["passwords"].hash(password) if password else None
    except PasswordsBusy:
        errors["password"] = _("The server is busy checking passwords. Save again in a few seconds.")
        return await _form_page(request, member=member, values=values, errors=errors, status=503)
    if member is None:
        try:
            await db.create_staff(values["username"], values["display_name"], password_hash, values["role"],
                                  values["departments"])
        except sa.exc.IntegrityError:  # created at the same moment in another window
            errors["username"] = _("This username is taken.")
            return await _form_page(request, member=member, values=values, errors=errors, status=400)
        raise forms.see_other(LIST, "staff-created")
    await db.update_staff(member.id, display_name=values["display_name"], role=values["role"],
                          active=values["active"], departments=values["departments"], password_hash=password_hash)
    reason = "your session has ended"
    if password_hash:  # a new password also ends the wait its forgotten predecessor caused
        await request.app["login_throttle"].unlock(member.username)
        # ...and every session opened with the old one (but not the admin's own, when it is theirs)
        own = member.id == request["staff"].id
        await db.end_sessions(member.id, keep=request.cookies.get(SESSION_COOKIE) if own else None)
        reason = "your password was changed"
    if not values["active"]:
        reason = "your account was deactivated"
    # Sessions are gone (deactivated, new password): the open console ends. Otherwise it
    # gets the new departments and role at once.
    await consoles.refresh(request.app, [member.id], reason=reason)
    raise forms.see_other(LIST, "staff-saved")


@admin_required
async def create(request: web.Request) -> web.Response:
    return await _save(request, None)


@admin_required
async def update(request: web.Request) -> web.Response:
    return await _save(request, await _find(request))


@admin_required
async def unlock(request: web.Request) -> web.Response:
    """Lift the wait that failed logins put on this account, from every address."""
    member = await _find(request)
    await request.app["login_throttle"].unlock(member.username)
    raise forms.see_other(LIST, "staff-unlocked")


def routes() -> list[web.RouteDef]:
    member = "{staff_id:[0-9]{1,9}}"
    return [web.get(LIST, list_page), web.get(f"{LIST}/new", new_page), web.post(f"{LIST}/new", create),
            web.get(f"{LIST}/{member}/edit", edit_page), web.post(f"{LIST}/{member}/edit", update),
            web.post(f"{LIST}/{member}/unlock", unlock)]
