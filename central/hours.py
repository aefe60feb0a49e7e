"""Office hours of a department: weekly schedule, closed days and open/closed queries.

Pure logic, no I/O. Intervals are local wall-clock times in the department's time
zone; every instant is computed through zoneinfo, so DST changes come out right.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from protocol.errors import AmtsklingelError

__all__ = ["OfficeHours", "OfficeHoursError", "WEEKDAY_KEYS", "WEEKDAY_NAMES"]

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SEARCH_DAYS = 366  # how far next_opening looks ahead

_UTC = UTC
_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fromisoformat alone also takes "2026-W52-4"
_Span = tuple[datetime, datetime]  # [start, end) in UTC


class OfficeHoursError(AmtsklingelError, ValueError):
    """Invalid office-hours configuration; the message is written for a city admin."""


def _fmt(t: time) -> str:
    return t.strftime("%H:%M")


def _parse_time(value: Any, where: str) -> time:
    m = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise OfficeHoursError(f"{where}: {value!r} is not a valid time (expected HH:MM between 00:00 and 23:59)")
    return time(int(m[1]), int(m[2]))


def _parse_date(value: Any) -> date:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise OfficeHoursError(f"closed day {value!r} is not a valid date (expected YYYY-MM-DD, e.g. 2026-12-24)")


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise OfficeHoursError("datetime must be timezone-aware")
    return at.astimezone(_UTC)


@dataclass(frozen=True)
class OfficeHours:
    """Weekly opening intervals (0=Monday..6=Sunday, local wall time), closed days and time zone.

    Intervals include their start and exclude their end. The constructor validates and
    normalises (intervals sorted, empty weekdays dropped), raising OfficeHoursError.
    """

    weekly: dict[int, tuple[tuple[time, time], ...]]
    closed_days: frozenset[date] = field(default_factory=frozenset)
    timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError, OSError, TypeError):
            raise OfficeHoursError(
                f"unknown time zone {self.timezone!r} (expected a name such as 'Europe/Berlin')"
            ) from None
        weekly: dict[int, tuple[tuple[time, time], ...]] = {}
        for day, intervals in self.weekly.items():
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise OfficeHoursError(f"unknown weekday {day!r} (expected 0=Monday to 6=Sunday)")
            name = WEEKDAY_NAMES[day]
            for interval in intervals:
                if not (isinstance(interval, tuple) and len(interval) == 2 and all(
                        isinstance(t, time) and t.tzinfo is None and not t.second and not t.microsecond
                        for t in interval)):
                    raise OfficeHoursError(f"{name}: {interval!r} is not a pair of whole-minute times")
                start, end = interval
                if end < start:
                    raise OfficeHoursError(f"{name}: interval {_fmt(start)}-{_fmt(end)} ends before it starts")
                if end == start:
                    raise OfficeHoursError(f"{name}: interval {_fmt(start)}-{_fmt(end)} is empty")
            ordered = tuple(sorted(intervals))
            for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
                # Touching intervals (12:00-14:00 after 08:00-12:00) are fine; they merge at runtime.
                if s2 < e1:
                    raise OfficeHoursError(
                        f"{name}: intervals {_fmt(s1)}-{_fmt(e1)} and {_fmt(s2)}-{_fmt(e2)} overlap")
            if ordered:
                weekly[day] = ordered
        # Frozen, so normalise via object.__setattr__; the copy also shields us from later
        # mutation of the caller's dict.
        object.__setattr__(self, "weekly", dict(sorted(weekly.items())))
        if not all(isinstance(d, date) and not isinstance(d, datetime) for d in self.closed_days):
            raise OfficeHoursError("closed days must be dates")
        object.__setattr__(self, "closed_days", frozenset(self.closed_days))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OfficeHours:
        """Build from the JSON form produced by to_dict(); raises OfficeHoursError when invalid."""
        if not isinstance(d, Mapping):
            raise OfficeHoursError("office hours must be an object with 'weekly', 'closed_days', 'timezone'")
        unknown = sorted(map(str, set(d) - {"weekly", "closed_days", "timezone"}))
        if unknown:
            raise OfficeHoursError(f"unknown setting(s) {', '.join(unknown)}; expected weekly, closed_days, timezone")
        raw_weekly = d.get("weekly", {})
        if not isinstance(raw_weekly, Mapping):
            raise OfficeHoursError("'weekly' must map weekdays (mon ... sun) to lists of intervals")
        names = {n.lower(): i for i, n in enumerate(WEEKDAY_NAMES)} | {k: i for i, k in enumerate(WEEKDAY_KEYS)}
        weekly: dict[int, tuple[tuple[time, time], ...]] = {}
        for key, raw in raw_weekly.items():
            day = names.get(key.strip().lower()) if isinstance(key, str) else None
            if day is None:
                raise OfficeHoursError(f"unknown weekday {key!r}; use mon, tue, wed, thu, fri, sat or sun")
            name = WEEKDAY_NAMES[day]
            if day in weekly:
                raise OfficeHoursError(f"{name} is listed twice")
            if not isinstance(raw, (list, tuple)):
                raise OfficeHoursError(f'{name}: expected a list of intervals like [["08:00", "12:00"]]')
            intervals = []
            for item in raw:
                if not isinstance(item, (list, tuple)) or len(item) != 2:
                    raise OfficeHoursError(f'{name}: {item!r} is not an interval; write it as ["08:00", "12:00"]')
                intervals.append((_parse_time(item[0], name), _parse_time(item[1], name)))
            weekly[day] = tuple(intervals)
        raw_days = d.get("closed_days", [])
        if not isinstance(raw_days, (list, tuple)):
            raise OfficeHoursError("'closed_days' must be a list of dates like \"2026-12-24\"")
        return cls(weekly=weekly, closed_days=frozenset(map(_parse_date, raw_days)),
                   timezone=d.get("timezone", "Europe/Berlin"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; lists all seven weekdays (empty list = closed that day)."""
        return {
            "timezone": self.timezone,
            "weekly": {key: [[_fmt(s), _fmt(e)] for s, e in ivs] for key, (_, ivs) in
                       zip(WEEKDAY_KEYS, self._week())},
            "closed_days": sorted(d.isoformat() for d in self.closed_days),
        }

    def describe_week(self) -> list[tuple[int, list[tuple[str, str]]]]:
        """Per weekday (0=Monday..6=Sunday) the intervals as ("HH:MM", "HH:MM"), for display."""
        return [(day, [(_fmt(s), _fmt(e)) for s, e in ivs]) for day, ivs in self._week()]

    def is_open(self, at: datetime) -> bool:
        """Whether the department is open at the aware datetime `at`."""
        return self._current(at) is not None

    def closes_at(self, at: datetime) -> datetime | None:
        """End of the interval that is open at `at` (department tz), or None if closed."""
        span = self._current(at)
        return span[1].astimezone(self._tz) if span else None

    def next_opening(self, at: datetime) -> datetime | None:
        """Next opening strictly after `at` (department tz); if open now, the one after this
        interval ends. Looks at most SEARCH_DAYS days ahead; None if none found."""
        instant = _as_utc(at)
        for start, _ in self._spans_around(instant, SEARCH_DAYS):
            # Spans are merged, so the one containing `at` is skipped and the next starts later.
            if start > instant:
                return start.astimezone(self._tz)
        return None

    def __hash__(self) -> int:
        # The generated hash would fail on the dict field; hash its (normalised) items instead.
        return hash((tuple(self.weekly.items()), self.closed_days, self.timezone))

    # -- internals ---------------------------------------------------------------

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances, so this is cheap

    def _week(self) -> list[tuple[int, tuple[tuple[time, time], ...]]]:
        return [(day, self.weekly.get(day, ())) for day in range(7)]

    def _current(self, at: datetime) -> _Span | None:
        instant = _as_utc(at)
        for start, end in self._spans_around(instant, 1):
            if start <= instant < end:
                return start, end
        return None

    def _day_spans(self, day: date) -> Iterator[_Span]:
        if day in self.closed_days:
            return
        tz = self._tz
        for start, end in self.weekly.get(day.weekday(), ()):
            # fold=0 (the default) gives a wall time inside the spring-forward gap the
            # pre-transition offset, i.e. moves it forward by the gap (02:30 -> 03:30 CEST) as
            # RFC 5545 does, and picks the first 02:xx on the fall-back day, so 02:00-03:00
            # then covers both passes.
            s = datetime.combine(day, start, tzinfo=tz).astimezone(_UTC)
            e = datetime.combine(day, end, tzinfo=tz).astimezone(_UTC)
            if s < e:  # e.g. 02:00-03:00 on the spring-forward day does not exist
                yield s, e

    def _spans_around(self, instant: datetime, days_ahead: int) -> Iterator[_Span]:
        """Open spans (UTC, sorted) from the local day before `instant` to `days_ahead` days
        after it, with overlapping or touching spans merged so each span is one opening."""
        # Start a day early because DST shifts can move a span over local midnight.
        day = instant.astimezone(self._tz).date() - timedelta(days=1)
        pending: _Span | None = None
        for _ in range(days_ahead + 2):
            for s, e in sorted(self._day_spans(day)):
                if pending and s <= pending[1]:
                    pending = (pending[0], max(pending[1], e))
                    continue
                if pending and pending[1] > instant:
                    yield pending
                pending = (s, e)
            day += timedelta(days=1)
        if pending and pending[1] > instant:
            yield pending
