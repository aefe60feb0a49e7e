"""A booking as a calendar file (RFC 5545): one event in the department's time zone, with that zone's rules.

The event's times carry ``TZID`` and the file describes the zone (VTIMEZONE) with its transitions in the
year before and after the appointment, taken from the system's tz database, so every calendar shows the
right hour, also across a change to or from summer time.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PRODID = "-//Amtsklingel//Termine//DE"
SPAN = dt.timedelta(days=366)  # transitions described either side of the appointment


def escape(text: str) -> str:
    """TEXT values: backslash, semicolon, comma and line breaks escaped (RFC 5545 3.3.11)."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next with a leading space (RFC 5545 3.1), never inside
    a UTF-8 sequence."""
    out, current = [], b""
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def _local(at: dt.datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S")


def _offset(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _transitions(zone: ZoneInfo, around: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """(UTC instant before, UTC instant at) each change of offset within SPAN of ``around``, to the minute."""
    found = []
    step = dt.timedelta(hours=6)
    at = (around - SPAN).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    end = around + SPAN
    while at < end:
        nxt = at + step
        if at.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            low, high = at, nxt  # narrow down to the minute
            while high - low > dt.timedelta(minutes=1):
                mid = low + (high - low) / 2
                if low.astimezone(zone).utcoffset() == mid.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append((low, high.replace(second=0, microsecond=0)))
        at = nxt
    return found


def vtimezone(name: str, around: dt.datetime) -> list[str]:
    zone = ZoneInfo(name)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{name}"]
    changes = _transitions(zone, around)
    if not changes or changes[0][1] > around:  # also describe the offset in force before the first change
        first = (changes[0][0] if changes else around).astimezone(zone)
        lines += ["BEGIN:STANDARD", "DTSTART:19700101T000000", f"TZOFFSETFROM:{_offset(first.utcoffset())}",
                  f"TZOFFSETTO:{_offset(first.utcoffset())}", f"TZNAME:{first.tzname()}", "END:STANDARD"]
    for before, at in changes:
        old, new = before.astimezone(zone), at.astimezone(zone)
        kind = "DAYLIGHT" if new.dst() else "STANDARD"
        # The onset in the local time that was in force until then (RFC 5545 3.6.5).
        onset = (at + old.utcoffset()).replace(tzinfo=None)
        lines += [f"BEGIN:{kind}", f"DTSTART:{_local(onset)}", f"TZOFFSETFROM:{_offset(old.utcoffset())}",
                  f"TZOFFSETTO:{_offset(new.utcoffset())}", f"TZNAME:{new.tzname()}", f"END:{kind}"]
    return [*lines, "END:VTIMEZONE"]


def calendar(*, uid: str, start: dt.datetime, end: dt.datetime, summary: str, description: str, url: str,
             created: dt.datetime) -> str:
    """The whole file. ``start``/``end`` are aware datetimes in the department's zone (a ZoneInfo)."""
    zone = start.tzinfo.key  # type: ignore[union-attr] - always a ZoneInfo here
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             *vtimezone(zone, start),
             "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{created.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
             f"DTSTART;TZID={zone}:{_local(start)}", f"DTEND;TZID={zone}:{_local(end)}",
             f"SUMMARY:{escape(summary)}", f"DESCRIPTION:{escape(description)}", f"URL:{url}",
             "TRANSP:OPAQUE", "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)
