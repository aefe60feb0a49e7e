"""A citizen's visit resumed from its resume token, the same for a kiosk (kiosk_side.py) and a browser at home
(home_side.py).

The token (central/rooms/resume_token.py) carries the visit's place. When central restarted and forgot its
visits, a token of the earlier process puts the visit back where it stood: waiting in its place, or in its
call (media is peer to peer and went on through the restart).
"""
from __future__ import annotations

import logging
import time

from central.live.booked_visits import BookedVisits
from central.live.guest_rejoin import GuestRejoins
from central.live.guest_side import CITIZEN
from central.live.link import Link
from central.rooms import Visit, VisitState
from central.rooms.resume_token import Claims
from protocol import messages as m
from protocol.codec import encode

log = logging.getLogger(__name__)


class VisitResumption(GuestRejoins, BookedVisits):
    def _restore_visit(self, claims: Claims, **citizen: object) -> Visit | None:
        """Put back the visit ``claims`` describe, for the citizen whose ``Visit`` fields are ``citizen`` (a
        kiosk's id and location, or a connection at home); None when the token does not restore one.

        Only a token of an earlier central process restores: one of this process whose visit is unknown
        belongs to a visit that has ended.
        """
        if claims.instance == self.tokens.instance or claims.department not in self.departments:
            return None
        now_wall, now_mono = time.time(), time.monotonic()
        visit = Visit(**citizen, department=claims.department, language=claims.language,
                      arrived_at=claims.arrived_at, id=claims.visit_id,
                      # a booked visit keeps its priority, and releases its booking if it ends before pick-up
                      slot_start=claims.slot_start, booking=claims.booking,
                      # the queue sorts on the monotonic clock: place the arrival on this process's
                      arrived_mono=now_mono - max(0.0, now_wall - claims.arrived_at))
        clerk = self.staff.get(claims.clerk_id) if claims.clerk_id is not None else None
        in_call = claims.state is VisitState.IN_CALL and (clerk is None or clerk.visit_id is None)
        if in_call:
            visit.state, visit.clerk_id, visit.kiosk_has_call = VisitState.IN_CALL, claims.clerk_id, True
            visit.picked_up_at = claims.picked_up_at or now_wall
            visit.picked_up_mono = now_mono - max(0.0, now_wall - visit.picked_up_at)
            visit.first_wait_s = max(0.0, visit.picked_up_at - claims.arrived_at)
        self.rooms.add(visit)
        self._issue_token(visit)
        self._watch_slot(visit)
        log.info("visit restored after a restart of central",
                 extra={"department": visit.department, "origin": visit.origin})
        if not in_call:
            self._to_department(visit.department, encode(m.QueueJoined(type="queue.joined", visit=visit.wire(),
                                                                       reason="restored")))
        elif clerk is not None:
            self._give_back_call(clerk, visit)
        else:
            self._start_grace(visit, "staff_lost")  # the clerk's console has not reconnected (yet)
        return visit

    def _tell_resumed(self, link: Link, visit: Visit) -> None:
        """The citizen is back (on ``link``): its grace ends, and it hears where its visit stands; a visit
        restored ahead of others moves them back, and they hear their new place and wait."""
        self._cancel_grace(visit, "kiosk_lost")
        if visit.state is VisitState.WAITING:
            position, wait = self._tell_place(visit)
            link.send(encode(m.VisitResumed(type="visit.resumed", visit_id=visit.id, department=visit.department,
                                            state="waiting", position=position, expected_wait_s=wait,
                                            resume_token=visit.resume_token)))
        else:
            link.send(encode(m.VisitResumed(type="visit.resumed", visit_id=visit.id, department=visit.department,
                                            state="in_call", resume_token=visit.resume_token)))
            if not visit.kiosk_has_call:  # picked up while the citizen was away
                self._start_call(visit)
            else:
                self._restart_with(visit, CITIZEN, "", link)
        self._update_positions(visit.department)
