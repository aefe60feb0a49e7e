"""The slot grid of a department: which appointments can be booked, and when a booking may check in.

Slots follow the office hours (central/hours.py): each opening interval of a day is cut into
slots of the department's length from its start; a slot that would run past the interval's end
is not offered. Closed days have none. All times are computed in the department's time zone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from central.hours import OfficeHours
from protocol.errors import AmtsklingelError

# A booked citizen may check in this long before their slot begins (they wait as a walk-in until it
# begins, then go ahead) and until the slot ends. Later, the booking is for another time: they may
# still come as a walk-in.
CHECK_IN_EARLY_S = 10 * 60

SLOT_MINUTES = (5, 240)   # allowed range of a slot's length
PARALLEL = (1, 50)        # how many citizens may book the same slot
DAYS_AHEAD = (1, 180)     # how far ahead a slot may be booked (today counts as day 0)


class BookingError(AmtsklingelError, ValueError):
    """A booking request that cannot be served. ``reason`` is a stable code the pages translate."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SlotSettings:
    """Per department: length of a slot, how many citizens per slot, how many days ahead."""

    slot_minutes: int = 15
    parallel: int = 1
    days_ahead: int = 28

    def __post_init__(self) -> None:
        for name, (low, high) in (("slot_minutes", SLOT_MINUTES), ("parallel", PARALLEL),
                                  ("days_ahead", DAYS_AHEAD)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise BookingError("bad_settings", f"{name} must be a whole number from {low} to {high}, "
                                                   f"not {value!r}")


@dataclass(frozen=True)
class Slot:
    start: dt.datetime  # aware, in the department's time zone
    end: dt.datetime

    @property
    def start_ts(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        return int(self.end.timestamp())


def slots_of_day(hours: OfficeHours, settings: SlotSettings, day: dt.date) -> list[Slot]:
    """Every slot of ``day`` (the department's local date), in order."""
    if day in hours.closed_days:
        return []
    tz, length = ZoneInfo(hours.timezone), dt.timedelta(minutes=settings.slot_minutes)
    slots = []
    for opens, closes in hours.weekly.get(day.weekday(), ()):
        start, end = dt.datetime.combine(day, opens), dt.datetime.combine(day, closes)
        while start + length <= end:
            s, e = start.replace(tzinfo=tz), (start + length).replace(tzinfo=tz)
            # A slot inside the spring-forward gap does not exist on that day.
            if e.astimezone(dt.UTC) > s.astimezone(dt.UTC) and _exists(s) and _exists(e):
                slots.append(Slot(s, e))
            start += length
    return slots


def _exists(local: dt.datetime) -> bool:
    """Whether this wall time happens at all (it does not inside the spring-forward gap)."""
    return local.astimezone(dt.UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def today(hours: OfficeHours, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(hours.timezone)).date()


def bookable_days(hours: OfficeHours, settings: SlotSettings, now: dt.datetime) -> list[dt.date]:
    """Days from today to ``days_ahead`` that have a slot still to come."""
    first = today(hours, now)
    days = (first + dt.timedelta(days=i) for i in range(settings.days_ahead + 1))
    return [d for d in days if any(s.start > now for s in slots_of_day(hours, settings, d))]


def check_day(hours: OfficeHours, settings: SlotSettings, day: dt.date, now: dt.datetime) -> None:
    """Raise BookingError unless ``day`` can be booked at all."""
    first = today(hours, now)
    if day < first:
        raise BookingError("past", f"{day.isoformat()} is in the past; choose a day from {first.isoformat()} on")
    last = first + dt.timedelta(days=settings.days_ahead)
    if day > last:
        raise BookingError("too_far", f"{day.isoformat()} is too far ahead; appointments can be booked until "
                                      f"{last.isoformat()}")
    if not slots_of_day(hours, settings, day):
        raise BookingError("closed_day", f"the office is closed on {day.isoformat()}; choose another day")


def check_slot(hours: OfficeHours, settings: SlotSettings, start: dt.datetime, now: dt.datetime) -> Slot:
    """The slot beginning at ``start`` if it can be booked now; else BookingError saying why."""
    local = start.astimezone(ZoneInfo(hours.timezone))
    check_day(hours, settings, local.date(), now)
    slot = next((s for s in slots_of_day(hours, settings, local.date()) if s.start == local), None)
    if slot is None:
        raise BookingError("not_on_grid", f"no appointment begins at {local:%H:%M} on {local.date().isoformat()}; "
                                          f"choose one of the listed times")
    if slot.start <= now:
        raise BookingError("past", f"the appointment at {local:%H:%M} has already begun; choose a later one")
    return slot


def check_in_window(slot_start: float, slot_end: float) -> tuple[float, float]:
    """From when until when (Unix seconds, end excluded) a booking of this slot may check in."""
    return slot_start - CHECK_IN_EARLY_S, slot_end


def forget_after(hours: OfficeHours, slot: Slot) -> int:
    """When the booking is deleted (Unix seconds): midnight at the end of its day, in the department's zone."""
    next_day = slot.start.date() + dt.timedelta(days=1)
    return int(dt.datetime.combine(next_day, dt.time(), tzinfo=ZoneInfo(hours.timezone)).timestamp())
