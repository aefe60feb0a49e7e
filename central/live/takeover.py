"""A standby central takes over: the waiting rooms it loaded from Redis become live visits.

Nobody is connected to this central yet. Each visit gets what a visit of a lost kiosk has: the
resume grace for its citizen to come back (and, in a call, for its clerk), a fresh resume token
for when they do (central/live/resume.py then finds the visit in its place), and its booked slot
watched. Visits whose citizen does not come back within the grace end as after a lost kiosk.
Unused guest links (central/rooms/redis_guest_links.py) stay valid for the calls they were made for, and
guests who had opened theirs may come back with their rejoin key within the grace (guest_rejoin.py); a link
or guest whose call is not there, or not in a call with that clerk, goes.
"""
from __future__ import annotations

import logging

from central.live.resume import VisitResumption
from central.rooms import VisitState

log = logging.getLogger(__name__)


class TakeOver(VisitResumption):
    def take_over(self) -> int:
        """Adopt every visit of the rooms (RedisRooms.load has filled them); returns how many."""
        visits = self.rooms.all()
        for visit in visits:
            self._issue_token(visit)
            self._start_grace(visit, "kiosk_lost")
            if visit.state is VisitState.IN_CALL:
                self._start_grace(visit, "staff_lost")
            self._watch_slot(visit)
        for guest in self.guest_links.all():
            visit = self.rooms.get(guest.visit_id)
            if visit is None or visit.state is not VisitState.IN_CALL or visit.clerk_id != guest.clerk_id:
                self.guest_links.remove(guest)
            elif guest.key_digest is not None:
                self._await_guest(guest)  # a guest who had opened the link: back within the grace, or lost
        log.info("took over %d visits from the previous leader", len(visits))
        return len(visits)
