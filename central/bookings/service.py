"""Booking a slot, as the public page (and a test) does it: check the request, then store it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from central.bookings.slots import BookingError, Slot, check_slot, forget_after, slots_of_day
from central.storage.database import Database, Department


@dataclass(frozen=True)
class Booked:
    code: str       # protocol.base.BookingCode; shown with codes.shown()
    department: str
    slot: Slot


async def book_slot(db: Database, department: Department, start: dt.datetime, now: dt.datetime) -> Booked:
    """Book the slot of ``department`` that begins at ``start`` (aware); BookingError says why not."""
    settings = (await db.bookings.settings()).get(department.slug)
    if settings is None:
        raise BookingError("not_bookable", f"{department.name} takes no appointments online")
    slot = check_slot(department.hours, settings, start, now)
    code = await db.bookings.create(department.slug, slot, settings.parallel, forget_after(department.hours, slot))
    return Booked(code, department.slug, slot)


async def free_slots(db: Database, department: Department, day: dt.date, now: dt.datetime) -> list[tuple[Slot, int]]:
    """The day's slots still to come with how many seats are free (0: full), for the booking page."""
    settings = (await db.bookings.settings()).get(department.slug)
    if settings is None:
        return []
    taken = await db.bookings.seats_taken(department.slug, day)
    return [(s, max(0, settings.parallel - taken.get(s.start_ts, 0)))
            for s in slots_of_day(department.hours, settings, day) if s.start > now]
