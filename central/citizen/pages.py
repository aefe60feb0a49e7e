"""Rendering a citizen page: its language (chosen, remembered, or the browser's), the language chooser,
the writing direction, and the catalogue for the page's scripts.

A page handler calls :func:`render_citizen` with a template that extends ``citizen/base.html``. The
template gets ``t`` (translate), ``lang`` (the :class:`CitizenLanguage`), ``languages`` (the chooser's
entries) and ``when``/``weekday`` (dates in the page's language). A language chosen with ``?lang=xx``
is remembered in a cookie for the citizen's next page (booking → visit).
"""
from __future__ import annotations

import datetime as dt
import json

from aiohttp import web
from babel.dates import format_date, format_time, get_datetime_format, get_day_names

from central.citizen.i18n import CitizenLanguage, languages, negotiate
from central.web.render import env

LANG_COOKIE = "ak_citizen_lang"
LANG_COOKIE_DAYS = 365


def citizen_language(request: web.Request) -> CitizenLanguage:
    """The page's language, worked out once per request."""
    if "citizen_language" not in request:
        request["citizen_language"] = negotiate(request.query.get("lang"), request.cookies.get(LANG_COOKIE),
                                                request.headers.get("Accept-Language"))
    return request["citizen_language"]


def chooser(request: web.Request, current: CitizenLanguage) -> list[dict]:
    """The language chooser's links: this page (with its other parameters, e.g. ``booking``) in each language."""
    return [{"code": lang.code, "name": lang.name, "dir": lang.direction, "current": lang.code == current.code,
             "href": str(request.rel_url.update_query(lang=lang.code))} for lang in languages().values()]


def when(lang: CitizenLanguage, at: dt.datetime | str | None) -> str:
    """A moment as a citizen reads it in their language, e.g. "Montag, 7. Dezember 2026, 08:00"."""
    if at is None:
        return ""
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    pattern = str(get_datetime_format("medium", locale=lang.locale))  # e.g. "{1}, {0}": date, then time
    return pattern.replace("{1}", format_date(at, "full", locale=lang.locale)).replace(
        "{0}", format_time(at, "short", locale=lang.locale))


def weekday(lang: CitizenLanguage, index: int) -> str:
    """Monday = 0, as in :meth:`central.hours.OfficeHours.describe_week`."""
    return get_day_names("wide", locale=lang.locale)[index]


def script_strings(lang: CitizenLanguage) -> str:
    """The catalogue as JSON for ``<script type="application/json" id="citizen-strings">`` (data, not code:
    the CSP allows it). ``<`` is escaped so no text can end the element."""
    return json.dumps(lang.messages, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def render_citizen(request: web.Request, template: str, *, status: int = 200, **context: object) -> web.Response:
    lang = citizen_language(request)
    html = env.get_template(template).render(
        t=lang.gettext, lang=lang, languages=chooser(request, lang), strings_json=script_strings(lang),
        when=lambda at: when(lang, at), weekday=lambda i: weekday(lang, i), path=request.path, **context)
    response = web.Response(text=html, content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store", "Vary": "Cookie, Accept-Language"})
    if request.query.get("lang") == lang.code and request.cookies.get(LANG_COOKIE) != lang.code:
        response.set_cookie(LANG_COOKIE, lang.code, max_age=LANG_COOKIE_DAYS * 86400, samesite="Lax", httponly=True,
                            secure=request.app["config"].secure_cookies, path="/")
    return response
