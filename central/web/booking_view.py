"""One booking, at its link ``/booking/{CODE}``: when and where, the code, its QR code, a calendar file,
cancelling, and at the time the way into the video call (the visit page with ``?booking=CODE``).

Whoever holds the code may do all this; nothing on these pages names the citizen. Unknown codes are
counted per address (central/web/booking_guard.py).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from central.bookings import codes, ics, mail
from central.bookings.qr import qr_svg
from central.bookings.slots import check_in_window
from central.citizen.i18n import T_
from central.citizen.pages import citizen_language, render_citizen, when
from central.storage.bookings import Booking
from central.storage.database import Department
from central.web.booking_guard import (
    booking_link,
    check_form,
    form_token,
    keep_form_token,
    limits,
    public_base,
    refuse_if_limited,
)


async def _find(request: web.Request) -> tuple[str, Booking, Department]:
    """The booking named in the path; a code written differently (lower case, with its dash) is redirected
    to its canonical link; an unknown one costs the address a token and gets a 404 page."""
    typed = request.match_info["code"]
    code = codes.normalise(typed)
    if code is not None and code != typed:
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPMovedPermanently(request.path.replace(typed, code, 1) + query)
    booking = await request.app["db"].bookings.find(code) if code else None
    dept = request.app["hub"].departments.get(booking.department) if booking else None
    if booking is None or dept is None:
        await refuse_if_limited(request, limits(request).code_misses)
        lang = citizen_language(request)
        page = render_citizen(request, "citizen/booking_problem.html", status=404, message=lang.gettext(T_(
            "There is no booking with this code. It may have been cancelled, or its day is over.")))
        raise web.HTTPNotFound(text=page.text, content_type="text/html", headers={"Cache-Control": "no-store"})
    return code, booking, dept


def _times(booking: Booking, dept: Department) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(dept.hours.timezone)
    return dt.datetime.fromtimestamp(booking.slot_start, zone), dt.datetime.fromtimestamp(booking.slot_end, zone)


def join_url(dept: Department, code: str) -> str:
    """The visit page of the booking's office, which sends the code with its visit.request (owner: home)."""
    return f"/visit/{dept.slug}?booking={code}"


async def show(request: web.Request) -> web.Response:
    code, booking, dept = await _find(request)
    lang = citizen_language(request)
    start, end = _times(booking, dept)
    opens, closes = check_in_window(booking.slot_start, booking.slot_end)
    now = request.app["hub"].now().timestamp()
    phase = "used" if booking.checked_in else "early" if now < opens else "now" if now < closes else "over"
    link = booking_link(request, code)
    token = form_token(request)
    return keep_form_token(request, render_citizen(
        request, "citizen/booking_show.html", form_token=token, office=dept, code=codes.shown(code), raw_code=code, link=link,
        start=start, end=end, phase=phase, join=join_url(dept, code), done=request.query.get("done"),
        opens=dt.datetime.fromtimestamp(opens, start.tzinfo),
        qr=qr_svg(link, lang.gettext(T_("QR code of the link to this booking")))), token)


async def cancel(request: web.Request) -> web.Response:
    check_form(request, await request.post())
    code, booking, dept = await _find(request)
    lang = citizen_language(request)
    if not await request.app["db"].bookings.cancel(code):  # used meanwhile (or cancelled in another tab)
        return render_citizen(request, "citizen/booking_problem.html", status=409, message=lang.gettext(T_(
            "This booking cannot be cancelled any more: it has been used.")))
    start, _ = _times(booking, dept)
    return render_citizen(request, "citizen/booking_cancelled.html", office=dept, start=start)


def calendar_text(request: web.Request, code: str, booking: Booking, dept: Department) -> str:
    lang = citizen_language(request)
    start, end = _times(booking, dept)
    link = booking_link(request, code)
    return ics.calendar(
        uid=f"{codes.code_hash(code)[:32]}@amtsklingel", start=start, end=end, url=link,
        created=request.app["hub"].now(),
        summary=lang.gettext(T_("Appointment: %(office)s (video call)"), office=dept.name),
        description=lang.gettext(T_("Booking code: %(code)s. Join the video call, see or cancel the booking: %(link)s"),
                                 code=codes.shown(code), link=link))


async def calendar_file(request: web.Request) -> web.Response:
    code, booking, dept = await _find(request)
    return web.Response(body=calendar_text(request, code, booking, dept).encode("utf-8"),
                        headers={"Content-Type": "text/calendar; charset=utf-8", "Cache-Control": "no-store",
                                 "Content-Disposition": f'attachment; filename="termin-{code}.ics"'})


async def confirm_by_mail(request: web.Request, code: str, address: str) -> bool:
    """Send the booking's confirmation to ``address`` once (central/bookings/mail.py)."""
    booking = await request.app["db"].bookings.find(code)
    dept = request.app["hub"].departments.get(booking.department) if booking else None
    if booking is None or dept is None:
        return False
    lang = citizen_language(request)
    start, _ = _times(booking, dept)
    link = booking_link(request, code)
    body = "\n\n".join([
        lang.gettext(T_("Your appointment at %(office)s: %(when)s"), office=dept.name, when=when(lang, start)),
        lang.gettext(T_("Booking code: %(code)s"), code=codes.shown(code)),
        lang.gettext(T_("At the time, join the video call from this page; you can also cancel there: %(link)s"),
                     link=link),
        lang.gettext(T_("At a kiosk of the city, choose \"I have an appointment\" and show the QR code on that page.")),
        lang.gettext(T_("This address was used only to send this message. It is not kept.")),
        public_base(request)])
    subject = lang.gettext(T_("Your appointment at %(office)s: %(when)s"), office=dept.name, when=when(lang, start))
    message = mail.build(request.app["config"], address, subject, body, calendar_text(request, code, booking, dept))
    return await mail.send(request.app["config"], message)


def routes() -> list[web.RouteDef]:
    code = "/booking/{code:[0-9A-Za-z -]{8,12}}"
    return [web.get(code, show), web.post(code + "/cancel", cancel), web.get(code + "/calendar.ics", calendar_file)]
