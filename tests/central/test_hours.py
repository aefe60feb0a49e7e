"""Tests for central.hours: office hours, closed days, DST and validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from central.hours import OfficeHours, OfficeHoursError

BERLIN = ZoneInfo("Europe/Berlin")

CONFIG = {
    "timezone": "Europe/Berlin",
    "weekly": {
        "mon": [["08:00", "12:00"], ["14:00", "18:00"]],
        "tue": [["08:00", "12:00"]],
        "wed": [["08:00", "12:00"], ["13:00", "15:30"]],
        "thu": [["08:00", "12:00"], ["14:00", "18:00"]],
        "fri": [["08:00", "12:00"]],
    },
    "closed_days": ["2026-12-24", "2026-12-25", "2026-12-31"],
}


@pytest.fixture
def hours() -> OfficeHours:
    return OfficeHours.from_dict(CONFIG)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# -- is_open / closes_at ----------------------------------------------------------


def test_several_intervals_and_lunch_break(hours: OfficeHours) -> None:
    # 2026-11-23 is a Monday.
    assert not hours.is_open(berlin(2026, 11, 23, 7, 59))
    assert hours.is_open(berlin(2026, 11, 23, 8, 0))  # start inclusive
    assert hours.is_open(berlin(2026, 11, 23, 11, 59, 59))
    assert not hours.is_open(berlin(2026, 11, 23, 12, 0))  # end exclusive
    assert not hours.is_open(berlin(2026, 11, 23, 13, 30))  # lunch break
    assert hours.is_open(berlin(2026, 11, 23, 14, 0))
    assert not hours.is_open(berlin(2026, 11, 23, 18, 0))
    assert hours.closes_at(berlin(2026, 11, 23, 9, 0)) == berlin(2026, 11, 23, 12, 0)
    assert hours.closes_at(berlin(2026, 11, 23, 15, 0)) == berlin(2026, 11, 23, 18, 0)
    assert hours.closes_at(berlin(2026, 11, 23, 13, 0)) is None


def test_other_timezone_input_is_converted(hours: OfficeHours) -> None:
    # 07:30 UTC in November is 08:30 in Berlin.
    at = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    assert hours.is_open(at)
    closes = hours.closes_at(at)
    assert closes == berlin(2026, 11, 23, 12, 0)
    assert closes.tzinfo == BERLIN and closes.hour == 12


def test_weekend_and_closed_day(hours: OfficeHours) -> None:
    assert not hours.is_open(berlin(2026, 11, 28, 10, 0))  # Saturday
    assert not hours.is_open(berlin(2026, 11, 29, 10, 0))  # Sunday
    assert not hours.is_open(berlin(2026, 12, 24, 10, 0))  # Thursday, but closed day
    assert hours.is_open(berlin(2026, 12, 17, 10, 0))  # the Thursday before


def test_naive_datetime_rejected(hours: OfficeHours) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hours.is_open(datetime(2026, 11, 23, 9, 0))


# -- next_opening -----------------------------------------------------------------


def test_next_opening_same_day_and_after_current_interval(hours: OfficeHours) -> None:
    assert hours.next_opening(berlin(2026, 11, 23, 6, 0)) == berlin(2026, 11, 23, 8, 0)
    assert hours.next_opening(berlin(2026, 11, 23, 12, 30)) == berlin(2026, 11, 23, 14, 0)
    # Open now: the opening after the current interval, not "now".
    assert hours.next_opening(berlin(2026, 11, 23, 8, 0)) == berlin(2026, 11, 23, 14, 0)
    assert hours.next_opening(berlin(2026, 11, 23, 15, 0)) == berlin(2026, 11, 24, 8, 0)


def test_next_opening_across_weekend(hours: OfficeHours) -> None:
    expected = berlin(2026, 11, 30, 8, 0)
    assert hours.next_opening(berlin(2026, 11, 27, 12, 0)) == expected  # Friday noon
    assert hours.next_opening(berlin(2026, 11, 28, 10, 0)) == expected  # Saturday
    assert hours.next_opening(datetime(2026, 11, 30, 6, 59, tzinfo=UTC)) == expected
    assert hours.next_opening(datetime(2026, 11, 30, 7, 0, tzinfo=UTC)) == berlin(2026, 11, 30, 14, 0)


def test_next_opening_across_holidays_and_weekend(hours: OfficeHours) -> None:
    # Wed 23 Dec afternoon -> 24 and 25 closed -> weekend -> Mon 28 Dec.
    assert hours.next_opening(berlin(2026, 12, 23, 16, 0)) == berlin(2026, 12, 28, 8, 0)
    # Wed 30 Dec afternoon -> 31 closed -> Fri 1 Jan is not a closed day here.
    assert hours.next_opening(berlin(2026, 12, 30, 16, 0)) == berlin(2027, 1, 1, 8, 0)


def test_next_opening_none_when_never_open() -> None:
    assert OfficeHours(weekly={}).next_opening(berlin(2026, 1, 1, 0, 0)) is None
    # Open only on a weekday that is closed for the whole search window.
    start = date(2026, 1, 1)
    closed = frozenset(start + timedelta(days=i) for i in range(-1, 400))
    only_mondays = OfficeHours(weekly={0: ((time(8), time(12)),)}, closed_days=closed)
    assert only_mondays.next_opening(berlin(2026, 1, 1, 0, 0)) is None


def test_next_opening_searches_366_days() -> None:
    start = date(2026, 1, 1)
    every_day = {d: ((time(8), time(12)),) for d in range(7)}

    def closed_for(days: int) -> OfficeHours:
        return OfficeHours(weekly=every_day, closed_days=frozenset(start + timedelta(days=i) for i in range(days)))

    # Day 366 after 2026-01-01 is 2027-01-02: still found; a day later is out of reach.
    assert closed_for(366).next_opening(berlin(2026, 1, 1, 0, 0)) == berlin(2027, 1, 2, 8, 0)
    assert closed_for(367).next_opening(berlin(2026, 1, 1, 0, 0)) is None


def test_touching_intervals_count_as_one() -> None:
    h = OfficeHours.from_dict({"weekly": {"mon": [["12:00", "14:00"], ["08:00", "12:00"]]}})
    at = berlin(2026, 11, 23, 11, 0)
    assert h.is_open(berlin(2026, 11, 23, 12, 0))
    assert h.closes_at(at) == berlin(2026, 11, 23, 14, 0)
    assert h.next_opening(at) == berlin(2026, 11, 30, 8, 0)


# -- DST ----------------------------------------------------------------------------


def test_spring_forward_day() -> None:
    # 2026-03-29 (Sunday): clocks jump 02:00 CET -> 03:00 CEST.
    h = OfficeHours.from_dict({"weekly": {"sun": [["01:00", "04:00"]], "mon": [["08:00", "12:00"]]}})
    assert h.is_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))  # 01:00 CET
    assert h.is_open(datetime(2026, 3, 29, 1, 59, tzinfo=UTC))  # 03:59 CEST
    assert not h.is_open(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 04:00 CEST
    closes = h.closes_at(berlin(2026, 3, 29, 1, 30))
    assert closes == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert closes.utcoffset() == timedelta(hours=2)
    # Only two real hours open; Monday opening is at 08:00 CEST = 06:00 UTC.
    assert h.next_opening(berlin(2026, 3, 29, 5, 0)) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert h.next_opening(berlin(2026, 3, 28, 12, 0)) == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_spring_forward_interval_in_the_gap() -> None:
    # 02:00-03:00 does not exist that Sunday; 02:30 is taken as 03:30 CEST (RFC 5545 rule).
    h = OfficeHours.from_dict({"weekly": {"sun": [["02:30", "05:00"]]}})
    nxt = h.next_opening(berlin(2026, 3, 28, 12, 0))
    assert nxt == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert (nxt.hour, nxt.minute, nxt.utcoffset()) == (3, 30, timedelta(hours=2))
    empty = OfficeHours.from_dict({"weekly": {"sun": [["02:00", "03:00"]]}})
    assert not any(empty.is_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=m))
                   for m in range(-60, 180, 5))
    # The next real opening is a week later.
    assert empty.next_opening(berlin(2026, 3, 28, 12, 0)) == berlin(2026, 4, 5, 2, 0)


def test_fall_back_day() -> None:
    # 2026-10-25 (Sunday): clocks go back 03:00 CEST -> 02:00 CET, 02:xx happens twice.
    h = OfficeHours.from_dict({"weekly": {"sun": [["01:00", "04:00"]], "mon": [["08:00", "12:00"]]}})
    assert h.is_open(datetime(2026, 10, 24, 23, 0, tzinfo=UTC))  # 01:00 CEST
    assert h.is_open(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # first 02:30 (CEST)
    assert h.is_open(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # second 02:30 (CET)
    assert h.is_open(datetime(2026, 10, 25, 2, 59, tzinfo=UTC))  # 03:59 CET
    assert not h.is_open(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))  # 04:00 CET
    # Four real hours open, ending 04:00 CET.
    closes = h.closes_at(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert closes == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
    assert closes.utcoffset() == timedelta(hours=1)
    assert h.next_opening(berlin(2026, 10, 25, 5, 0)) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_fall_back_interval_starting_in_repeated_hour() -> None:
    h = OfficeHours.from_dict({"weekly": {"sun": [["02:30", "03:30"]]}})
    # Starts at the first 02:30 (CEST) and so lasts two real hours. (Compare in UTC: Python's
    # == between zones is always False for a wall time that occurs twice, see PEP 495.)
    nxt = h.next_opening(berlin(2026, 10, 24, 12, 0))
    assert (nxt.hour, nxt.minute, nxt.fold) == (2, 30, 0)
    assert nxt.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert h.closes_at(nxt) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    # Asked during the first 02:xx pass, the opening after it is a week later.
    assert h.next_opening(datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == berlin(2026, 11, 1, 2, 30)


def test_regular_hours_follow_wall_clock_over_dst(hours: OfficeHours) -> None:
    # Mondays before and after the switch both open at 08:00 local time.
    assert hours.next_opening(berlin(2026, 3, 27, 13, 0)) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert hours.next_opening(berlin(2026, 10, 23, 13, 0)) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


# -- serialisation and display ---------------------------------------------------


def test_round_trip_and_describe_week(hours: OfficeHours) -> None:
    d = hours.to_dict()
    assert d["weekly"]["mon"] == [["08:00", "12:00"], ["14:00", "18:00"]]
    assert d["weekly"]["sat"] == [] and list(d["weekly"]) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert d["closed_days"] == ["2026-12-24", "2026-12-25", "2026-12-31"]
    assert OfficeHours.from_dict(d) == hours
    assert hash(OfficeHours.from_dict(d)) == hash(hours)
    week = hours.describe_week()
    assert [day for day, _ in week] == list(range(7))
    assert week[0] == (0, [("08:00", "12:00"), ("14:00", "18:00")])
    assert week[2] == (2, [("08:00", "12:00"), ("13:00", "15:30")])
    assert week[6] == (6, [])


def test_from_dict_defaults_and_lenient_keys() -> None:
    h = OfficeHours.from_dict({"weekly": {"Monday": [["8:00", "12:00"]], "SAT": []}})
    assert h.timezone == "Europe/Berlin"
    assert h.closed_days == frozenset()
    assert h.weekly == {0: ((time(8), time(12)),)}


def test_constructor_normalises() -> None:
    h = OfficeHours(weekly={0: ((time(14), time(18)), (time(8), time(12))), 3: ()},
                    closed_days={date(2026, 12, 24)})  # type: ignore[arg-type]
    assert h.weekly == {0: ((time(8), time(12)), (time(14), time(18)))}
    assert h.closed_days == frozenset({date(2026, 12, 24)})


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"weekly": {"mon": [["14:00", "12:00"]]}}, "Monday: interval 14:00-12:00 ends before it starts"),
        ({"weekly": {"tue": [["09:00", "09:00"]]}}, "Tuesday: interval 09:00-09:00 is empty"),
        ({"weekly": {"wed": [["08:00", "12:00"], ["11:00", "14:00"]]}},
         "Wednesday: intervals 08:00-12:00 and 11:00-14:00 overlap"),
        ({"weekly": {"fri": [["08:00", "18:00"], ["09:00", "10:00"]]}},
         "Friday: intervals 08:00-18:00 and 09:00-10:00 overlap"),
        ({"weekly": {"mon": [["8am", "12:00"]]}}, "Monday: '8am' is not a valid time"),
        ({"weekly": {"mon": [["08:00", "24:00"]]}}, "Monday: '24:00' is not a valid time"),
        ({"weekly": {"mon": [["08:60", "12:00"]]}}, "Monday: '08:60' is not a valid time"),
        ({"weekly": {"mon": [[800, "12:00"]]}}, "Monday: 800 is not a valid time"),
        ({"weekly": {"mon": [["08:00"]]}}, "Monday: \\['08:00'\\] is not an interval"),
        ({"weekly": {"mon": "08:00-12:00"}}, "Monday: expected a list of intervals"),
        ({"weekly": {"mo": []}}, "unknown weekday 'mo'"),
        ({"weekly": {"mon": [], "Monday": []}}, "Monday is listed twice"),
        ({"weekly": [], "timezone": "UTC"}, "'weekly' must map weekdays"),
        ({"weekly": {}, "timezone": "Europe/Berlín"}, "unknown time zone 'Europe/Berlín'"),
        ({"weekly": {}, "timezone": "Europe"}, "unknown time zone 'Europe'"),
        ({"weekly": {}, "timezone": ""}, "unknown time zone ''"),
        ({"weekly": {}, "closed_days": ["2026-02-30"]}, "closed day '2026-02-30' is not a valid date"),
        ({"weekly": {}, "closed_days": ["24.12.2026"]}, "closed day '24.12.2026' is not a valid date"),
        ({"weekly": {}, "closed_days": "2026-12-24"}, "'closed_days' must be a list"),
        ({"weekly": {}, "closed_day": []}, "unknown setting\\(s\\) closed_day"),
        (["mon"], "must be an object"),
    ],
)
def test_validation_errors(config: object, message: str) -> None:
    with pytest.raises(OfficeHoursError, match=message):
        OfficeHours.from_dict(config)  # type: ignore[arg-type]


def test_office_hours_error_is_value_error() -> None:
    assert issubclass(OfficeHoursError, ValueError)
    with pytest.raises(OfficeHoursError, match="unknown weekday 7"):
        OfficeHours(weekly={7: ((time(8), time(12)),)})
    with pytest.raises(OfficeHoursError, match="whole-minute"):
        OfficeHours(weekly={0: ((time(8, 0, 30), time(12)),)})


# -- properties -----------------------------------------------------------------------

_minutes = st.lists(st.integers(0, 24 * 60 - 1), unique=True, max_size=6).map(sorted)


def _intervals(points: list[int]) -> tuple[tuple[time, time], ...]:
    as_time = [time(p // 60, p % 60) for p in points]
    return tuple(zip(as_time[0::2], as_time[1::2]))


office_hours = st.builds(
    OfficeHours,
    weekly=st.dictionaries(st.integers(0, 6), _minutes.map(_intervals), max_size=7),
    closed_days=st.frozensets(st.dates(date(2025, 12, 1), date(2027, 12, 31)), max_size=30),
    timezone=st.sampled_from(["Europe/Berlin", "Europe/Berlin", "America/New_York", "UTC"]),
)


def _around(day: date) -> st.SearchStrategy[datetime]:
    return st.datetimes(datetime.combine(day, time()) - timedelta(days=2),
                        datetime.combine(day, time()) + timedelta(days=2),
                        timezones=st.just(UTC))


instants = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31),
                 timezones=st.sampled_from([UTC, BERLIN, ZoneInfo("Asia/Kolkata")])),
    _around(date(2026, 3, 29)),  # Europe DST switches ...
    _around(date(2026, 10, 25)),
    _around(date(2026, 3, 8)),  # ... and the US ones
    _around(date(2026, 11, 1)),
)


def _scan(h: OfficeHours, start: datetime, end: datetime, steps: int = 300) -> list[datetime]:
    """Sample points strictly between start and end (coarse, bounded count).

    In UTC: arithmetic on two datetimes sharing a tzinfo is wall-clock arithmetic
    in Python, which would step into the non-existent hour of a DST change.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    step = max((end - start) / steps, timedelta(minutes=1))
    points, t = [], start + step
    while t < end and len(points) < steps:
        points.append(t)
        t += step
    return points


def _just_before(t: datetime) -> datetime:
    """The instant one microsecond earlier (in UTC, for the reason given in _scan: at the spring
    change, 03:00 minus 1 µs in wall-clock arithmetic is 02:59:59.999999, an hour that never was)."""
    return t.astimezone(UTC) - timedelta(microseconds=1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=office_hours, at=instants)
# Sunday 02:00-04:00 in Berlin, the week before the spring change: it opens at 03:00 CEST.
@example(h=OfficeHours(weekly={6: ((time(2, 0), time(4, 0)),)}, closed_days=frozenset(), timezone="Europe/Berlin"),
         at=datetime(2026, 3, 22, 1, 0, tzinfo=UTC))
def test_next_opening_property(h: OfficeHours, at: datetime) -> None:
    nxt = h.next_opening(at)
    open_now = h.is_open(at)
    closes = h.closes_at(at)
    assert (closes is not None) == open_now
    if open_now:
        assert closes > at and not h.is_open(closes)
        assert h.is_open(_just_before(closes))
        assert all(h.is_open(t) for t in _scan(h, at, closes, 50))
    if nxt is None:
        return
    assert nxt > at
    assert nxt.tzinfo == ZoneInfo(h.timezone)
    assert h.is_open(nxt)
    assert not h.is_open(_just_before(nxt))  # it really *opens* then
    assert nxt - at <= timedelta(days=368)
    if open_now:
        assert nxt > closes
        at = closes
    # Nothing in between is open.
    assert not any(h.is_open(t) for t in _scan(h, at, nxt))


@settings(max_examples=300, deadline=None)
@given(h=office_hours, at=instants)
def test_is_open_matches_wall_clock_away_from_dst(h: OfficeHours, at: datetime) -> None:
    tz = ZoneInfo(h.timezone)
    local = at.astimezone(tz)
    midnight = datetime.combine(local.date(), time(), tzinfo=tz)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=tz)
    if midnight.utcoffset() != next_midnight.utcoffset():
        return  # a DST day; covered by the property above and the explicit tests
    expected = local.date() not in h.closed_days and any(
        s <= local.time().replace(tzinfo=None) < e for s, e in h.weekly.get(local.weekday(), ()))
    assert h.is_open(at) == expected


@given(h=office_hours)
def test_dict_round_trip(h: OfficeHours) -> None:
    assert OfficeHours.from_dict(h.to_dict()) == h
