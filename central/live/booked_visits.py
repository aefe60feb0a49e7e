"""Booked visits in the hub: a booking code checked when a citizen asks for a place, and slots beginning.

Checking in (docs in /central/bookings/slots.py): a booking of this department, not cancelled and not
used yet, within its check-in window (``CHECK_IN_EARLY_S`` before its slot until the slot's end) is
marked used, and the visit gets the slot's start (``Visit.slot_start``): from then on it goes ahead of
the department's walk-ins (central/rooms/waiting_rooms.py). This is the one step of a visit request that
waits for the database; every caller re-checks its own state after it.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from central.bookings.slots import check_in_window
from central.live.core import HubCore
from central.rooms import Visit, VisitState
from protocol import messages as m


@dataclass(frozen=True)
class BookingAccepted:
    code: str
    slot_start: float  # unix seconds
    slot_end: float


@dataclass(frozen=True)
class BookingRefused:
    reason: str                             # booking_unknown | booking_other_time | closed
    booked_for: dt.datetime | None = None   # with booking_other_time: the slot's start, department's zone
    next_opening: dt.datetime | None = None  # with closed

    def message(self, department: str) -> m.VisitRefused:
        return m.VisitRefused(type="visit.refused", department=department, reason=self.reason,
                              booked_for=self.booked_for.isoformat() if self.booked_for else None,
                              next_opening=self.next_opening.isoformat() if self.next_opening else None)


@dataclass(frozen=True)
class BookingLookup:
    """What a booking code is now, without using it (the kiosk asks before it queues)."""

    status: str                            # now | booking_unknown | booking_other_time
    department: str | None = None          # None with booking_unknown: nothing about the booking is told
    slot_start: dt.datetime | None = None  # in the department's time zone
    slot_end: dt.datetime | None = None


class BookedVisits(HubCore):
    async def look_up_booking(self, code: str) -> BookingLookup:
        """Whether ``code`` (normalised, protocol.base.BookingCode) may check in now, and where and when it is.

        "now" uses the same window as :meth:`check_in_booking` (slots.check_in_window).
        """
        booking = await self.bookings.find(code) if self.bookings is not None else None
        dept = self.departments.get(booking.department) if booking is not None else None
        if booking is None or dept is None or booking.checked_in:
            return BookingLookup("booking_unknown")
        zone = ZoneInfo(dept.hours.timezone)
        opens, closes = check_in_window(booking.slot_start, booking.slot_end)
        status = "now" if opens <= self.now().timestamp() < closes else "booking_other_time"
        return BookingLookup(status, dept.slug, dt.datetime.fromtimestamp(booking.slot_start, zone),
                             dt.datetime.fromtimestamp(booking.slot_end, zone))

    async def check_in_booking(self, code: str, department: str) -> BookingAccepted | BookingRefused:
        """Use the booking ``code`` (normalised, protocol.base.BookingCode) for a visit to ``department`` now.

        Accepted at most once per booking, also with several central processes and concurrent requests.
        A caller that cannot queue the visit after all must hand it back with :meth:`release_booking`.
        """
        found = await self.look_up_booking(code)
        if found.status == "booking_unknown" or found.department != department:
            return BookingRefused("booking_unknown")
        if found.status == "booking_other_time":
            return BookingRefused("booking_other_time", booked_for=found.slot_start)
        dept, now = self.departments[department], self.now()
        if not dept.hours.is_open(found.slot_start):  # the office closed that day after it was booked
            return BookingRefused("closed", next_opening=dept.hours.next_opening(now))
        if not await self.bookings.check_in(code, now.timestamp()):
            return BookingRefused("booking_unknown")  # used a moment ago by a concurrent request
        return BookingAccepted(code, found.slot_start.timestamp(), found.slot_end.timestamp())

    async def release_booking(self, accepted: BookingAccepted) -> None:
        """The visit for an accepted booking could not be queued after all: the booking may be used again."""
        if self.bookings is not None:
            await self.bookings.release(accepted.code)

    def _watch_slot(self, visit: Visit) -> None:
        """A booked visit that checked in early moves ahead when its slot begins: tell everyone then."""
        if visit.slot_start is None or visit.state is not VisitState.WAITING:
            return
        delay = visit.slot_start - self.now().timestamp()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._slot_began, visit.id)

    def _slot_began(self, visit_id: str) -> None:
        visit = self.rooms.get(visit_id)
        if visit is not None and visit.state is VisitState.WAITING and not self.stopping:
            self._update_positions(visit.department)
