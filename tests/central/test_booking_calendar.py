"""The calendar file read as RFC 5545 says a calendar must read it: the event's local time, with the offset its
VTIMEZONE gives for that moment, is the booked instant, in winter, in summer and on the days the clocks change."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from central.bookings.ics import calendar, fold


def unfold(text: str) -> list[str]:
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF only
    lines = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in lines)
    out: list[str] = []
    for line in lines:
        if line.startswith(" "):
            out[-1] += line[1:]
        else:
            out.append(line)
    return out


def instant_as_a_calendar_reads_it(lines: list[str]) -> dt.datetime:
    """DTSTART;TZID=...:local, resolved with the observance of the VTIMEZONE that began last before it."""
    local = dt.datetime.strptime(next(ln for ln in lines if ln.startswith("DTSTART;TZID=")).split(":", 1)[1],
                                 "%Y%m%dT%H%M%S")
    observances, current = [], {}
    for line in lines:
        if line in ("BEGIN:STANDARD", "BEGIN:DAYLIGHT"):
            current = {}
        elif line in ("END:STANDARD", "END:DAYLIGHT"):
            observances.append(current)
        elif ":" in line and current is not None:
            key, value = line.split(":", 1)
            current[key] = value
    def onset(o):
        return dt.datetime.strptime(o["DTSTART"], "%Y%m%dT%H%M%S")
    active = max((o for o in observances if onset(o) <= local), key=onset)
    sign = 1 if active["TZOFFSETTO"][0] == "+" else -1
    offset = dt.timedelta(hours=int(active["TZOFFSETTO"][1:3]), minutes=int(active["TZOFFSETTO"][3:5])) * sign
    return local.replace(tzinfo=dt.timezone(offset))


@pytest.mark.parametrize("zone, at", [
    ("Europe/Berlin", dt.datetime(2026, 12, 7, 9, 0)),    # winter
    ("Europe/Berlin", dt.datetime(2027, 6, 14, 9, 0)),    # summer
    ("Europe/Berlin", dt.datetime(2027, 3, 28, 10, 0)),   # the clocks went forward at 02:00 that night
    ("Europe/Berlin", dt.datetime(2026, 10, 25, 10, 0)),  # and back
    ("America/New_York", dt.datetime(2027, 3, 15, 9, 30)),
    ("Asia/Kolkata", dt.datetime(2027, 1, 4, 10, 0)),     # no summer time at all
])
def test_every_calendar_shows_the_booked_instant(zone, at):
    start = at.replace(tzinfo=ZoneInfo(zone))
    text = calendar(uid="u@amtsklingel", start=start, end=start + dt.timedelta(minutes=15), summary="Termin, 1; 2",
                    description="Code 7K3M-9QX2\nLink", url="https://city.example/booking/7K3M9QX2",
                    created=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR" and "VERSION:2.0" in lines
    assert instant_as_a_calendar_reads_it(lines) == start
    assert f"DTSTART;TZID={zone}:{at:%Y%m%dT%H%M%S}" in lines and "SUMMARY:Termin\\, 1\\; 2" in lines
    assert "DESCRIPTION:Code 7K3M-9QX2\\nLink" in lines and "DTSTAMP:20261201T000000Z" in lines


def test_long_lines_fold_between_characters():
    line = "DESCRIPTION:" + "Bürgerbüro " * 20
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
