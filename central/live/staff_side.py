"""The staff side of the hub: consoles connect, set presence, pick up, transfer, message, hang up.

Changes to a clerk's rights that must reach an open console at once (logout,
departments removed, deactivation) are handled here too, next to
:meth:`StaffSide.staff_connected` and :meth:`StaffSide.staff_disconnected`.
"""
from __future__ import annotations

import logging
import time

from central.live import ice
from central.live.clerk_video import answered_video
from central.live.guest_side import RTC, GuestSide
from central.live.peers import StaffPeer
from central.rooms import Visit, VisitState
from central.storage.database import Staff
from protocol import messages as m
from protocol import participants
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_VISIT = 10


class StaffSide(GuestSide):
    # == the console's connection ================================================
    def staff_connected(self, peer: StaffPeer) -> None:
        old = self.staff.get(peer.staff.id)
        if old is not None:
            # A second tab takes over: the call (if any) and presence move with it.
            peer.presence, peer.visit_id = old.presence, old.visit_id
            old.link.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                         detail="the console was opened in another window")))
            old.link.close()
        self.staff[peer.staff.id] = peer
        # A clerk whose console (or central) lost its connection mid-call gets the call back.
        # Media is peer to peer and may well have gone on: the console keeps its peer
        # connection, or asks for a fresh negotiation with call.restart if it has none.
        visit = self.rooms.get(peer.visit_id) if peer.visit_id else next(
            (v for v in self.rooms.all() if v.clerk_id == peer.staff.id and v.state is VisitState.IN_CALL), None)
        if visit is not None:
            peer.visit_id, peer.presence = visit.id, "in_call"
        peer.link.send(encode(self._snapshot(peer)))
        if visit is not None:
            self._give_back_call(peer, visit)
        self._update_positions(*peer.staff.departments)

    def staff_disconnected(self, peer: StaffPeer) -> None:
        if self.staff.get(peer.staff.id) is not peer:
            return
        del self.staff[peer.staff.id]
        if peer.visit_id and (visit := self.rooms.get(peer.visit_id)) is not None:
            self._start_grace(visit, "staff_lost")
        self._update_positions(*peer.staff.departments)

    # == changes made by an admin or by the clerk elsewhere ==========================
    def staff_revoked(self, staff_id: int, reason: str) -> None:
        """Logged out, password reset or deactivated: the open console ends at once, saying why.

        It is forgotten here before its socket has closed, so nothing more reaches it and
        nothing it still sends is acted on. A call it was in waits for the clerk as after a
        lost connection (the citizen is not cut off mid-sentence).
        """
        peer = self.staff.get(staff_id)
        if peer is None:
            return
        peer.link.send(encode(m.Error(type="error", code=ErrorCode.SESSION_ENDED.value,
                                      detail=f"{reason}; log in again")))
        peer.link.close()
        self.staff_disconnected(peer)

    def staff_changed(self, staff: Staff) -> None:
        """New role, name or departments: the open console works with them at once (a fresh snapshot;
        no events from, and no pick-ups in, departments it no longer serves)."""
        peer = self.staff.get(staff.id)
        if peer is None:
            return
        before, peer.staff = peer.staff.departments, staff
        self.staff.departments_changed(peer, before)
        peer.link.send(encode(self._snapshot(peer)))
        self._update_positions(*(before | staff.departments))

    # == messages from the console ===============================================
    def staff_message(self, peer: StaffPeer, msg: m.Message) -> None:
        if isinstance(msg, m.Ping):
            peer.link.send(encode(m.Pong(type="pong")))
        elif isinstance(msg, m.PresenceSet):
            if peer.visit_id is not None:
                raise ProtocolError(ErrorCode.WRONG_STATE, "presence changes after the call")
            peer.presence = msg.status
            peer.link.send(encode(m.PresenceChanged(type="presence.changed", presence=peer.presence)))
            self._update_positions(*peer.staff.departments)
        elif isinstance(msg, m.VisitPickup):
            self._pickup(peer, msg)
        elif isinstance(msg, m.VisitTransfer):
            self._transfer(peer, msg)
        elif isinstance(msg, m.VisitMessage):
            visit = self._staff_visit(peer, msg.visit_id)
            if len(visit.messages) >= MAX_MESSAGES_PER_VISIT:
                raise ProtocolError(ErrorCode.RATE_LIMITED, f"at most {MAX_MESSAGES_PER_VISIT} messages per visit")
            visit.messages.append(msg.text)
            self._to_kiosk(visit, m.VisitMessageToKiosk(type="visit.message", visit_id=visit.id, text=msg.text))
        elif isinstance(msg, participants.FROM_STAFF):
            self._guest_staff_message(peer, msg)  # guest_side.py
        elif isinstance(msg, (m.VisitHangup, *RTC, m.CallRestart)):
            visit = self.rooms.get(msg.visit_id)
            if visit is None or visit.clerk_id != peer.staff.id:
                raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "you are not in a call with this visit")
            if isinstance(msg, RTC) and (msg := self._pair(visit, "clerk", msg)) is None:
                return  # a pair with a guest
            if isinstance(msg, m.RtcOffer):
                raise ProtocolError(ErrorCode.WRONG_STATE, "the citizen's side sends the offer to the clerk; answer it")
            if isinstance(msg, m.VisitHangup):
                self._end(visit, "hangup_staff")
            elif isinstance(msg, m.RtcState):
                self._rtc_state(visit, msg.state, from_kiosk=False)
            elif isinstance(msg, m.CallRestart):
                if self._citizen_link(visit) is not None:
                    self._start_call(visit)
                else:  # the kiosk is away: it gets call.start when it resumes
                    visit.kiosk_has_call = False
            else:
                if isinstance(msg, m.RtcAnswer) and (seen := answered_video(msg.sdp, peer.user_agent)) is not None:
                    self.record_clerk_video(peer.staff.id, seen)
                self.relay.forward(visit.id, "staff", msg, self._citizen_link(visit))
        else:  # pragma: no cover
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")

    def _staff_visit(self, peer: StaffPeer, visit_id: str) -> Visit:
        """A visit this clerk may act on: in their call, or waiting in one of their departments."""
        visit = self.rooms.get(visit_id)
        if visit is None:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended")
        if visit.clerk_id == peer.staff.id:
            return visit
        if visit.department not in peer.staff.departments:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this visit belongs to a department you do not serve")
        if visit.state is VisitState.IN_CALL:
            raise ProtocolError(ErrorCode.ALREADY_TAKEN, "another clerk is in a call with this visit")
        return visit

    def _pickup(self, peer: StaffPeer, msg: m.VisitPickup) -> None:
        if peer.visit_id is not None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "hang up the current call before picking up another")
        if msg.visit_id is None and msg.department is None:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "name a visit_id or a department")
        department = msg.department
        if msg.visit_id is not None:
            visit = self.rooms.get(msg.visit_id)
            if visit is None:
                raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended; pick up another")
            department = visit.department
        if department not in peer.staff.departments:
            raise ProtocolError(ErrorCode.FORBIDDEN, "you do not serve this department")
        visit = self.rooms.pick_up(peer.staff.id, visit_id=msg.visit_id, department=department)
        self._issue_token(visit)
        peer.visit_id = visit.id
        peer.presence = "in_call"
        peer.link.send(encode(m.CallAssigned(type="call.assigned", visit=visit.wire(),
                                             ice_servers=self.ice_for(ice.staff(peer.staff.id)))))
        peer.link.send(encode(m.PresenceChanged(type="presence.changed", presence="in_call")))
        if visit.kiosk_id is not None:
            self.fleet.call_picked_up(visit.kiosk_id)  # calls today on the fleet page
        if self._citizen_link(visit) is not None:
            self._start_call(visit)
        # else: the kiosk is away (in its grace); it gets call.start when it resumes, or the
        # visit ends with kiosk_lost on both sides when the grace runs out.
        self._to_department(visit.department, encode(m.QueueLeft(type="queue.left", visit_id=visit.id,
                                                                 department=visit.department, reason="picked_up")))
        self._update_positions(visit.department)

    def _transfer(self, peer: StaffPeer, msg: m.VisitTransfer) -> None:
        visit = self._staff_visit(peer, msg.visit_id)
        target = self.departments.get(msg.department)
        if target is None:
            raise ProtocolError(ErrorCode.UNKNOWN_DEPARTMENT, f"there is no department {msg.department!r}")
        if target.slug == visit.department and visit.state is VisitState.WAITING:
            raise ProtocolError(ErrorCode.WRONG_STATE, "the visit already waits in this department")
        if not target.hours.is_open(self.now()):
            raise ProtocolError(ErrorCode.CLOSED, f"{target.name} is closed now; choose an open department")
        origin, was_in_call = visit.department, visit.state is VisitState.IN_CALL
        if was_in_call:
            self._free_clerk(visit, "transferred")
        else:
            self._to_department(origin, encode(m.QueueLeft(type="queue.left", visit_id=visit.id, department=origin,
                                                           reason="transferred")))
        self.rooms.transfer(visit, target.slug)
        self._issue_token(visit)
        position, wait = self._tell_place(visit)
        self._to_kiosk(visit, m.VisitTransferred(type="visit.transferred", visit_id=visit.id, department=target.slug,
                                                 position=position, expected_wait_s=wait,
                                                 resume_token=visit.resume_token))
        self._to_department(target.slug, encode(m.QueueJoined(type="queue.joined", visit=visit.wire(),
                                                              reason="transferred")))
        self._update_positions(origin, target.slug)

    def _snapshot(self, peer: StaffPeer) -> m.ConsoleSnapshot:
        info = {d.slug: d for d in self.department_info()}
        queues = [m.DepartmentQueue(slug=slug, name=info[slug].name, open=info[slug].open,
                                    waiting=[v.wire() for v in self.rooms.waiting(slug)])
                  for slug in self.departments if slug in peer.staff.departments]
        return m.ConsoleSnapshot(type="console.snapshot", staff_name=peer.staff.display_name, presence=peer.presence,
                                 departments=queues, transfer_targets=list(info.values()),
                                 ice_servers=self.ice_for(ice.staff(peer.staff.id)),
                                 server_time=time.time())
