"""A kiosk asks which appointment a booking code is, before the citizen queues with it.

The kiosk has only the code (read from the booking's QR code or typed); the answer gives it the
department and the slot to show ("10:30, Bürgerbüro") and to send `visit.request` with. Nothing is
used or changed here: the look-up is :meth:`BookedVisits.look_up_booking`, whose "now" is the
check-in window of `visit.request`. A code of a department this kiosk does not offer is unknown to
it, as that department is (protocol/booking_lookup.py).
"""
from __future__ import annotations

from central.live.booked_visits import BookedVisits
from central.live.limits import retry_after_s
from central.live.peers import KioskPeer
from protocol.booking_lookup import BookingFound, BookingLookup
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError


class BookingLookups(BookedVisits):
    async def refresh_bookable(self) -> None:
        """Which departments take appointments (the admin's slot settings), for the kiosks' welcome: they
        offer "I have an appointment" only then. At start and when the admin saves a department (whose
        caller then resends the departments to the kiosks)."""
        self.bookable = frozenset(await self.bookings.settings()) if self.bookings is not None else frozenset()

    async def _booking_lookup(self, peer: KioskPeer, msg: BookingLookup) -> None:
        if wait := self.booking_lookups.take(peer.kiosk.id):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many booking look-ups from this kiosk; try again in "
                                f"{seconds} s", retry_after_s=seconds)
        found = await self.look_up_booking(msg.booking)
        offered = peer.settings is None or found.department in peer.settings.departments
        if found.status == "booking_unknown" or not offered:
            peer.link.send(encode(BookingFound(type="booking.found", booking=msg.booking, status="booking_unknown")))
            return
        peer.link.send(encode(BookingFound(type="booking.found", booking=msg.booking, status=found.status,
                                           department=found.department, slot_start=found.slot_start.isoformat(),
                                           slot_end=found.slot_end.isoformat())))
