"""Shared pieces of the admin pages: page rendering, redirects and form parsing.

Parsers take the request's translator ``_`` and raise :class:`FieldError`
with a message written for a city admin; the handlers collect these per field
and re-render the form with the admin's input kept.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiohttp import web

from central.hours import OfficeHours, OfficeHoursError
from central.i18n import gettext_for
from central.web.render import render, render_in_slices
from protocol.errors import AmtsklingelError

Translate = Callable[..., str]

LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
USERNAME_RE = re.compile(r"[A-Za-z0-9._@-]{2,64}")
ROLES = ("clerk", "admin")

# Weekday names accepted in the office-hours text, whatever the page language is.
_WEEKDAY_ALIASES = [
    ("mo", "mon", "monday", "montag"),
    ("di", "tu", "tue", "tues", "tuesday", "dienstag"),
    ("mi", "we", "wed", "wednesday", "mittwoch"),
    ("do", "th", "thu", "thur", "thurs", "thursday", "donnerstag"),
    ("fr", "fri", "friday", "freitag"),
    ("sa", "sat", "saturday", "samstag", "sonnabend"),
    ("so", "su", "sun", "sunday", "sonntag"),
]
_DAY_SPEC_RE = re.compile(r"\s*([^:\d]+?)\s*(?::|(?=\d)|$)(.*)")
_INTERVAL_RE = re.compile(r"\s*([^\s\-–—]+)\s*[-–—]\s*([^\s\-–—]+)\s*")
_CLOSED_WORDS = {"", "-", "–", "—", "closed", "geschlossen"}


class FieldError(AmtsklingelError, ValueError):
    """A form field's value cannot be used; the message is shown next to the field."""


def translator(request: web.Request) -> Translate:
    return gettext_for(request["locale"])


def page(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    """Render an admin page; ``done`` carries the success note after a redirect."""
    response = render(request, template, status=status, done=request.query.get("done", ""), **context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def page_in_slices(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    """:func:`page` for a large page: rendered a little at a time (render.render_in_slices)."""
    response = await render_in_slices(request, template, status=status, done=request.query.get("done", ""),
                                      **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def see_other(location: str, done: str) -> web.HTTPSeeOther:
    """Post/Redirect/Get: back to a list page with a success note (a fixed key, never free text)."""
    return web.HTTPSeeOther(f"{location}?done={done}")


def text(form, name: str, max_len: int) -> str:  # noqa: ANN001 - MultiDictProxy
    return str(form.get(name, "")).strip()[:max_len]


def required(value: str, _: Translate, max_len: int) -> str:
    if not value:
        raise FieldError(_("Please fill in this field."))
    if len(value) > max_len:
        raise FieldError(_("At most %(count)s characters.", count=max_len))
    return value


def format_duration(seconds: float | None) -> str:
    """Seconds as minutes:seconds (e.g. 4:05); a dash when there is no value."""
    if seconds is None:
        return "–"
    total = int(round(seconds))
    return f"{total // 60}:{total % 60:02d}"


def today(request: web.Request) -> dt.date:
    return request.app["hub"].now().astimezone(ZoneInfo(request.app["config"].timezone)).date()


# -- departments -----------------------------------------------------------------

def parse_slug(value: str, _: Translate) -> str:
    if not SLUG_RE.fullmatch(value):
        raise FieldError(_("Use 1 to 40 lowercase letters, digits and hyphens, e.g. \"buergeramt\"."))
    return value


def parse_languages(value: str, _: Translate) -> list[str]:
    languages: list[str] = []
    for part in value.split(","):
        code = part.strip().lower()
        if not code:
            continue
        if not LANGUAGE_RE.fullmatch(code):
            raise FieldError(_("\"%(code)s\" is not a language code; use two or three letters such as de, en, tr.",
                               code=part.strip()))
        if code not in languages:
            languages.append(code)
    if not languages:
        raise FieldError(_("Name at least one language, e.g. \"de, en\"."))
    return languages


def parse_sort_order(value: str, _: Translate) -> int:
    if not value:
        return 0
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not -9999 <= number <= 9999:
        raise FieldError(_("Enter a whole number between -9999 and 9999."))
    return number


def _weekday_names(_: Translate) -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


def _weekday_lookup(_: Translate) -> dict[str, int]:
    lookup = {alias: day for day, aliases in enumerate(_WEEKDAY_ALIASES) for alias in aliases}
    long_names = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"),
                  _("Sunday")]
    for day, (short, long) in enumerate(zip(_weekday_names(_), long_names, strict=True)):
        lookup.setdefault(short.lower().rstrip("."), day)
        lookup.setdefault(long.lower(), day)
    return lookup


def _parse_days(spec: str, line_no: int, lookup: dict[str, int], _: Translate) -> list[int]:
    days: list[int] = []
    for part in spec.split(","):
        ends = [lookup.get(name.strip().lower().rstrip(".")) for name in re.split(r"[-–—]", part)]
        if len(ends) > 2 or None in ends:
            raise FieldError(_("Line %(line)s: \"%(text)s\" is not a weekday; start the line with Mo, Tu, We, "
                               "Th, Fr, Sa or Su, e.g. \"Mo: 08:00-12:00\".", line=line_no, text=spec))
        first, last = ends[0], ends[-1]
        if last < first:
            raise FieldError(_("Line %(line)s: the range \"%(text)s\" runs backwards; write e.g. Mo-Fr.",
                               line=line_no, text=part.strip()))
        days.extend(range(first, last + 1))
    return days


def parse_week(value: str, _: Translate) -> dict[str, list[list[str]]]:
    """Lines like "Mo: 08:00-12:00, 14:00-18:00" (or "Mo-Fr: ...", "Sa: closed") -> OfficeHours weekly dict.

    Days without a line are closed. Times are checked later by OfficeHours itself.
    """
    lookup = _weekday_lookup(_)
    closed_words = _CLOSED_WORDS | {_("closed").lower()}
    keys = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    weekly: dict[str, list[list[str]]] = {}
    seen: dict[int, int] = {}
    for line_no, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        match = _DAY_SPEC_RE.fullmatch(line)
        if match is None:
            raise FieldError(_("Line %(line)s: start the line with a weekday, e.g. \"Mo: 08:00-12:00\".",
                               line=line_no))
        days = _parse_days(match[1], line_no, lookup, _)
        rest = match[2].strip()
        intervals: list[list[str]] = []
        if rest.lower() not in closed_words:
            for part in re.split(r"[,;]", rest):
                interval = _INTERVAL_RE.fullmatch(part)
                if interval is None:
                    raise FieldError(_("Line %(line)s: \"%(text)s\" is not a time range; write it as 08:00-12:00.",
                                       line=line_no, text=part.strip()))
                intervals.append([interval[1], interval[2]])
        for day in days:
            if day in seen:
                raise FieldError(_("Line %(line)s: %(day)s was already given in line %(other)s.",
                                   line=line_no, day=_weekday_names(_)[day], other=seen[day]))
            seen[day] = line_no
            weekly[keys[day]] = [list(i) for i in intervals]
    return weekly


def parse_closed_days(value: str, _: Translate) -> list[str]:
    days: list[str] = []
    for line_no, line in enumerate(value.splitlines(), start=1):
        day = line.strip()
        if not day:
            continue
        try:
            OfficeHours.from_dict({"closed_days": [day]})
        except OfficeHoursError:
            raise FieldError(_("Line %(line)s: \"%(text)s\" is not a date; write one date per line as "
                               "YYYY-MM-DD, e.g. 2026-12-24.", line=line_no, text=day)) from None
        days.append(day)
    return days


def parse_hours(week_text: str, closed_text: str, timezone: str, _: Translate) -> tuple[OfficeHours | None,
                                                                                         dict[str, str]]:
    """Both office-hours fields -> (OfficeHours or None, errors by field name)."""
    errors: dict[str, str] = {}
    weekly: dict[str, list[list[str]]] = {}
    closed: list[str] = []
    try:
        weekly = parse_week(week_text, _)
    except FieldError as exc:
        errors["hours"] = str(exc)
    try:
        closed = parse_closed_days(closed_text, _)
    except FieldError as exc:
        errors["closed_days"] = str(exc)
    if errors:
        return None, errors
    try:
        return OfficeHours.from_dict({"weekly": weekly, "closed_days": closed, "timezone": timezone}), {}
    except OfficeHoursError as exc:
        return None, {"hours": str(exc)}


def format_week(hours: OfficeHours | None, _: Translate) -> str:
    names = _weekday_names(_)
    week = hours.describe_week() if hours else [(day, []) for day in range(7)]
    return "\n".join(f"{names[day]}: " + (", ".join(f"{a}-{b}" for a, b in intervals) if intervals else _("closed"))
                     for day, intervals in week)


def format_closed_days(hours: OfficeHours) -> str:
    return "\n".join(sorted(d.isoformat() for d in hours.closed_days))
