"""Setting up a call's media: call.start, the media timer, rtc.state and call.failed.

Media flows peer to peer; central only learns how it fared from the two sides' rtc.state.
A call whose media has not connected within ``call_connect_timeout_s`` of call.start (or that
either side reports failed) is over: the citizen waits again at the head of the queue, both
sides are told in plain words, and the failure is counted for IT (most likely ICE/TURN).
"""
from __future__ import annotations

import asyncio
import logging

from central.live import ice
from central.live.endings import VisitEndings
from central.live.peers import StaffPeer
from central.rooms import Visit, VisitState
from protocol import messages as m
from protocol.codec import encode

log = logging.getLogger(__name__)


class CallSetup(VisitEndings):
    def _start_call(self, visit: Visit) -> None:
        """Tell the visit's kiosk to start the call (it sends its offer) and wait for its media."""
        visit.kiosk_has_call = True
        self._to_kiosk(visit, m.CallStart(type="call.start", visit_id=visit.id,
                                          ice_servers=self._citizen_ice(visit),
                                          resume_token=visit.resume_token))
        self._cancel_media_timer(visit)
        self._media[visit.id] = asyncio.get_running_loop().call_later(
            self.call_connect_timeout_s, self._media_timed_out, visit.id)

    def _give_back_call(self, peer: StaffPeer, visit: Visit) -> None:
        """The clerk had this call before their console or central reconnected: it goes on."""
        self._cancel_grace(visit, "staff_lost")
        announce = peer.presence != "in_call"
        peer.visit_id, peer.presence = visit.id, "in_call"
        peer.link.send(encode(m.CallAssigned(type="call.assigned", visit=visit.wire(),
                                             ice_servers=self.ice_for(ice.staff(peer.staff.id)),
                                             resumed=True)))
        if announce:
            peer.link.send(encode(m.PresenceChanged(type="presence.changed", presence="in_call")))
            self._update_positions(*peer.staff.departments)

    def _citizen_signal(self, visit: Visit, msg: m.RtcOffer | m.RtcCandidate | m.RtcState) -> None:
        """Signaling from the visit's citizen (kiosk or browser at home) for its call with the clerk."""
        if isinstance(msg, m.RtcState):
            self._rtc_state(visit, msg.state, from_kiosk=True)
            return
        self._require(visit, VisitState.IN_CALL, "no clerk has picked up this visit yet")
        clerk = self.staff.get(visit.clerk_id)
        self.relay.forward(visit.id, "kiosk", msg, clerk.link if clerk is not None else None)

    def _rtc_state(self, visit: Visit, state: str, *, from_kiosk: bool) -> None:
        if visit.state is not VisitState.IN_CALL:
            return  # a late report on a call that is already over
        if state == "failed":
            self._call_failed(visit, "ice_failed")
        elif from_kiosk:  # the kiosk's connected is the one that counts: it is where the citizen sits
            self._cancel_media_timer(visit)

    def _media_timed_out(self, visit_id: str) -> None:
        self._media.pop(visit_id, None)
        visit = self.rooms.get(visit_id)
        if visit is not None and visit.state is VisitState.IN_CALL:
            self._call_failed(visit, "media_timeout")

    def _call_failed(self, visit: Visit, reason: str) -> None:
        """The call is over before it began: the visit waits again with its arrival time (so at the
        head of its queue), the clerk is free, and both sides learn why."""
        self._cancel_media_timer(visit)
        self._cancel_grace(visit, "staff_lost")  # that clerk's call is over, whether they come back or not
        department = visit.department
        self.record_call_failure(department, self.now().date())
        log.warning("call media did not connect; the visit waits again",
                    extra={"department": department, "reason": reason})
        self._free_clerk(visit, reason, notice=m.CallFailed(type="call.failed", visit_id=visit.id, reason=reason))
        self.rooms.transfer(visit, department)
        token = self._issue_token(visit)
        position, wait = self._tell_place(visit)
        self._to_kiosk(visit, m.CallFailed(type="call.failed", visit_id=visit.id, reason=reason, position=position,
                                           expected_wait_s=wait, resume_token=token))
        self._to_department(department, encode(m.QueueJoined(type="queue.joined", visit=visit.wire(),
                                                             reason="call_failed")))
        self._update_positions(department)
