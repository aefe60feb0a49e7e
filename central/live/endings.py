"""How visits end: at once (hang-up, cancel) or after a grace period (kiosk or clerk lost)."""
from __future__ import annotations

import asyncio
import logging
import time

from central.live.core import HubCore
from central.rooms import Visit, VisitState
from protocol import messages as m
from protocol.codec import encode

log = logging.getLogger(__name__)

# A visit cancelled this soon after it was requested was a mistaken press (or a flood of
# request/cancel): it is not counted as a visit in the statistics.
BRIEF_VISIT_S = 10.0


class VisitEndings(HubCore):
    def _end(self, visit: Visit, reason: str) -> None:
        """End the visit and forget it; only anonymous counters remain."""
        self._cancel_grace(visit)
        duration = None
        if visit.state is VisitState.IN_CALL:
            duration = time.monotonic() - (visit.picked_up_mono or time.monotonic())
            self.estimator.record(visit.department, duration)
            self._free_clerk(visit, reason)
        else:
            self._to_department(visit.department, encode(m.QueueLeft(
                type="queue.left", visit_id=visit.id, department=visit.department,
                reason="kiosk_lost" if reason == "kiosk_lost" else "cancelled")))
        self._to_kiosk(visit, m.VisitEnded(type="visit.ended", visit_id=visit.id, reason=reason))
        if visit.booking is not None and visit.first_wait_s is None:
            self._release_booking(visit.booking)
        department = visit.department
        self.rooms.remove(visit)
        brief = reason == "cancelled" and duration is None and time.monotonic() - visit.arrived_mono < BRIEF_VISIT_S
        if not brief:
            self.record_visit(department, visit.first_wait_s, duration, self.now().date())
        self._update_positions(department)

    def _release_booking(self, code: str) -> None:
        """A booked visit ended before a clerk picked it up (cancelled, connection lost for good): its citizen
        may check in again with the same code within the window (central/live/booked_visits.py)."""
        if self.bookings is None:
            return
        task = asyncio.get_running_loop().create_task(self.bookings.release(code))
        self._booking_writes.add(task)
        task.add_done_callback(self._booking_writes.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or
                               log.error("a booking could not be released", exc_info=t.exception()))

    def _free_clerk(self, visit: Visit, reason: str, notice: m.Message | None = None) -> None:
        """The visit's clerk is available again and is told why (``visit.ended`` unless ``notice``)."""
        self._cancel_media_timer(visit)
        clerk = self.staff.get(visit.clerk_id) if visit.clerk_id is not None else None
        if clerk is not None and clerk.visit_id == visit.id:
            clerk.visit_id = None
            clerk.presence = "available"
            clerk.link.send(encode(notice or m.VisitEnded(type="visit.ended", visit_id=visit.id, reason=reason)))
            clerk.link.send(encode(m.PresenceChanged(type="presence.changed", presence="available")))

    # -- grace: a lost kiosk or clerk may come back ------------------------------
    # Kiosk and clerk each have their own timer: a clerk picking up a visit whose kiosk is
    # away does not stop the kiosk's clock, and a kiosk coming back does not stop the clerk's.
    def _timers(self, reason: str) -> dict[str, asyncio.TimerHandle]:
        return self._grace if reason == "kiosk_lost" else self._clerk_grace

    def _start_grace(self, visit: Visit, reason: str) -> None:
        if self.stopping:
            return  # central is going down; the visit comes back with its kiosk's token
        timers = self._timers(reason)
        if (old := timers.pop(visit.id, None)) is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        timers[visit.id] = loop.call_later(self.resume_grace_s, self._grace_expired, visit.id, reason)

    def _cancel_grace(self, visit: Visit, reason: str | None = None) -> None:
        """Stop the timer of one side (``kiosk_lost``/``staff_lost``), or of both."""
        for timers in ((self._grace, self._clerk_grace) if reason is None else (self._timers(reason),)):
            if (handle := timers.pop(visit.id, None)) is not None:
                handle.cancel()

    def _grace_expired(self, visit_id: str, reason: str) -> None:
        self._timers(reason).pop(visit_id, None)
        visit = self.rooms.get(visit_id)
        if visit is not None:
            self._end(visit, reason)

    def _cancel_media_timer(self, visit: Visit) -> None:
        if (handle := self._media.pop(visit.id, None)) is not None:
            handle.cancel()

    def stop(self) -> None:
        """Central shuts down. Nothing is ended or recorded: each kiosk holds its visit's signed
        token and puts it back when central returns; the process's memory dies with it."""
        self.stopping = True
        for timers in (self._grace, self._clerk_grace, self._media, self._guest_grace):
            for handle in timers.values():
                handle.cancel()
            timers.clear()
