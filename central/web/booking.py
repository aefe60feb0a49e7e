"""The public booking pages: office -> day -> free time -> a booking code. No account, no name.

``/booking`` lists the offices that take appointments (and finds a booking by its code);
``/booking/office/{slug}?day=YYYY-MM-DD`` shows the bookable days and that day's free times, and books one
(POST). The booking itself is shown at ``/booking/{CODE}`` (central/web/booking_view.py).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date, format_time

from central.bookings import codes, mail
from central.bookings.service import book_slot, free_slots
from central.bookings.slots import BookingError, bookable_days, check_day
from central.citizen.i18n import T_, CitizenLanguage
from central.citizen.pages import citizen_language, render_citizen
from central.storage.database import Department
from central.web.booking_guard import check_form, form_token, keep_form_token, limits, refuse_if_limited
from central.web.booking_view import confirm_by_mail

# What the citizen reads for each BookingError.reason (central/bookings/slots.py, storage/bookings.py).
REASONS = {
    "past": T_("This time has already passed. Please choose a later one."),
    "too_far": T_("This day is too far ahead. Please choose one of the days shown."),
    "closed_day": T_("The office is closed on this day. Please choose one of the days shown."),
    "not_on_grid": T_("No appointment begins at this time. Please choose one of the times shown."),
    "full": T_("Someone else has just booked this time. Please choose another one."),
    "not_bookable": T_("This office takes no appointments online."),
    "bad_input": T_("Please choose a time."),
    "bad_email": T_("This is not an e-mail address. Correct it, or leave the field empty."),
}


async def _offices(request: web.Request) -> list[tuple[Department, int]]:
    """Offices that take appointments, with their days ahead."""
    settings = await request.app["db"].bookings.settings()
    return [(d, settings[d.slug].days_ahead) for d in request.app["hub"].departments.values() if d.slug in settings]


async def offices_page(request: web.Request) -> web.Response:
    return render_citizen(request, "citizen/booking_offices.html", offices=[d for d, _ in await _offices(request)],
                          code_error=None, code="")


async def find_code(request: web.Request) -> web.Response:
    """The form "Show my booking": a typed code goes to its page (unknown codes are counted there)."""
    typed = request.query.get("code", "")[:100]
    code = codes.normalise(typed)
    if code is None:
        await refuse_if_limited(request, limits(request).code_misses)
        lang = citizen_language(request)
        return render_citizen(request, "citizen/booking_offices.html", status=400, code=typed,
                              offices=[d for d, _ in await _offices(request)], code_error=lang.gettext(T_(
                                  "This is not a booking code. It has 8 letters and digits, e.g. 7K3M-9QX2.")))
    raise web.HTTPSeeOther(f"/booking/{code}")


def _day_label(lang: CitizenLanguage, day: dt.date) -> str:
    return format_date(day, "full", locale=lang.locale)


def _time_label(lang: CitizenLanguage, at: dt.datetime) -> str:
    return format_time(at, "short", locale=lang.locale)


async def _office_page(request: web.Request, dept: Department, day: dt.date | None, *, status: int = 200,
                       error: str | None = None, email: str = "") -> web.Response:
    lang, db, now = citizen_language(request), request.app["db"], request.app["hub"].now()
    settings = (await db.bookings.settings()).get(dept.slug)
    if settings is None:
        return render_citizen(request, "citizen/booking_problem.html", status=404,
                              message=lang.gettext(REASONS["not_bookable"]))
    days = bookable_days(dept.hours, settings, now)
    if day is None or day not in days:
        day = days[0] if days else None
    slots = [(s, free) for s, free in await free_slots(db, dept, day, now) if free] if day else []
    token = form_token(request)
    return keep_form_token(request, render_citizen(
        request, "citizen/booking_office.html", status=status, office=dept, error=error, email=email, form_token=token,
        mail_offered=request.app["config"].smtp_host is not None, days_ahead=settings.days_ahead,
        days=[{"iso": d.isoformat(), "label": _day_label(lang, d), "current": d == day} for d in days],
        day={"iso": day.isoformat(), "label": _day_label(lang, day)} if day else None,
        slots=[{"value": s.start.strftime("%Y-%m-%dT%H:%M"), "label": f"{_time_label(lang, s.start)} – "
                f"{_time_label(lang, s.end)}"} for s, _ in slots]), token)


def _department(request: web.Request) -> Department:
    dept = request.app["hub"].departments.get(request.match_info["slug"])
    if dept is None:
        raise web.HTTPNotFound(text="There is no such office.\n")
    return dept


def _parse_day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None


async def office_page(request: web.Request) -> web.Response:
    dept = _department(request)
    day = _parse_day(request.query.get("day"))
    error = None
    if request.query.get("day") is not None:
        settings = (await request.app["db"].bookings.settings()).get(dept.slug)
        try:
            if day is None:
                raise BookingError("bad_input", "not a date")
            if settings is not None:
                check_day(dept.hours, settings, day, request.app["hub"].now())
        except BookingError as err:
            error = citizen_language(request).gettext(REASONS.get(err.reason, REASONS["bad_input"]))
            day = None
    return await _office_page(request, dept, day, status=400 if error else 200, error=error)


async def book(request: web.Request) -> web.Response:
    dept = _department(request)
    lang = citizen_language(request)
    form = await request.post()
    check_form(request, form)
    start_text, email_text = str(form.get("start", ""))[:40], str(form.get("email", ""))[:300].strip()
    zone = ZoneInfo(dept.hours.timezone)
    try:
        start = dt.datetime.strptime(start_text, "%Y-%m-%dT%H:%M").replace(tzinfo=zone)
    except ValueError:
        start = None
    chosen_day = start.date() if start else _parse_day(str(form.get("day", "")))
    email = None
    if email_text and request.app["config"].smtp_host is not None:
        email = mail.valid_address(email_text)
        if email is None:
            return await _office_page(request, dept, chosen_day, status=400, email=email_text,
                                      error=lang.gettext(REASONS["bad_email"]))
    if start is None:
        return await _office_page(request, dept, chosen_day, status=400, error=lang.gettext(REASONS["bad_input"]))
    await refuse_if_limited(request, limits(request).bookings)
    try:
        booked = await book_slot(request.app["db"], dept, start, request.app["hub"].now())
    except BookingError as err:
        return await _office_page(request, dept, chosen_day, status=409 if err.reason == "full" else 400,
                                  email=email_text, error=lang.gettext(REASONS.get(err.reason, REASONS["bad_input"])))
    after = "new"
    if email is not None:
        after = "sent" if await confirm_by_mail(request, booked.code, email) else "unsent"
        email = email_text = None  # used once: not kept, not logged
    raise web.HTTPSeeOther(f"/booking/{booked.code}?done={after}")


def routes() -> list[web.RouteDef]:
    office = "/booking/office/{slug:[a-z0-9][a-z0-9-]{0,39}}"
    return [web.get("/booking", offices_page), web.get("/booking/find", find_code),
            web.get(office, office_page), web.post(office, book)]
