"""The hub's side for citizens' browsers at home (``/ws/visit``): the citizen side of the kiosk protocol.

A browser at home is a citizen endpoint like a kiosk: its visit waits in the same waiting room, clerks
pick it up, transfer it, write to it and hang up as with a kiosk visit (the hub reaches either through
``_citizen_link``), and its call's signaling goes the kiosk's way (``_citizen_signal``, and ``_pair`` for
the pairs with guests: the browser offers to each guest as the kiosk does). What differs:

- it has no identity: a visit belongs to the connection that asked for it (``Visit.home_id``), and to a
  new connection only with the visit's resume token (the page reconnecting after a network change or a
  restart of central, which puts the visit back from the token as for a kiosk);
- it is public, so every connection, request and message is limited (central/live/limits.py), per
  address where a person could open many connections, and each department takes only so many visitors
  from home at a time (``Department.online_cap``, else ``HubCore.online_cap``);
- it learns nothing of other visits: any visit id but its own is answered alike (`not_your_visit`),
  whether that visit exists or not.
"""
from __future__ import annotations

import logging
from collections.abc import Coroutine

from central.live import ice
from central.live.booked_visits import BookingAccepted, BookingRefused
from central.live.guest_side import RTC
from central.live.limits import retry_after_s
from central.live.peers import HomePeer
from central.live.resume import VisitResumption
from central.rooms import Visit, VisitState
from protocol import messages as m
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

NOT_YOURS = "no visit of this connection has that id; start a new visit"


class HomeSide(VisitResumption):
    def home_connected(self, peer: HomePeer) -> None:
        self.homes[peer.id] = peer
        peer.link.send(encode(m.Welcome(type="welcome", kiosk_location="", ice_servers=self.ice_for(ice.HOME),
                                        departments=self.department_info())))

    def home_disconnected(self, peer: HomePeer) -> None:
        if self.homes.get(peer.id) is not peer:
            return
        del self.homes[peer.id]
        visit = self.rooms.get(peer.visit_id) if peer.visit_id is not None else None
        if visit is not None and visit.home_id == peer.id:
            self._start_grace(visit, "kiosk_lost")  # the page may come back (visit.resume) within the grace

    def online_visits(self, department: str) -> int:
        """Visitors from home in this department now, waiting or in a call."""
        return sum(1 for v in self.rooms.all() if v.department == department and v.origin == "online")

    def home_message(self, peer: HomePeer, msg: m.Message) -> Coroutine[None, None, None] | None:
        if wait := self.home_messages_left.take(peer.id):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many messages; wait {seconds} s",
                                retry_after_s=seconds)
        if isinstance(msg, m.Ping):
            peer.link.send(encode(m.Pong(type="pong")))
        elif isinstance(msg, m.VisitRequest):
            return self._home_request(peer, msg)
        elif isinstance(msg, m.VisitResume):
            self._home_resume(peer, msg)
        else:
            visit = self._home_visit(peer, msg.visit_id)
            if isinstance(msg, RTC) and (msg := self._pair(visit, "citizen", msg)) is None:
                return None  # a pair with a guest (guest_side.py): relayed there
            if isinstance(msg, m.VisitCancel):
                self._require(visit, VisitState.WAITING, "only a waiting visit can be cancelled; hang up instead")
                self._end(visit, "cancelled")
            elif isinstance(msg, m.VisitHangup):
                self._require(visit, VisitState.IN_CALL, "there is no call to hang up; cancel the wait instead")
                self._end(visit, "device_failed" if msg.reason == "device_failed" else "hangup_kiosk")
            elif isinstance(msg, (m.RtcOffer, m.RtcCandidate, m.RtcState)):
                self._citizen_signal(visit, msg)
            else:  # pragma: no cover - protocol.home.HOME_TO_CENTRAL and this method must list the same types
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")
        return None

    def _home_visit(self, peer: HomePeer, visit_id: str) -> Visit:
        visit = self.rooms.get(visit_id)
        if visit is None or visit.home_id != peer.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, NOT_YOURS)
        return visit

    def _refuse(self, peer: HomePeer, department: str, reason: str, **more: object) -> None:
        peer.link.send(encode(m.VisitRefused(type="visit.refused", department=department, reason=reason, **more)))

    def _home_request(self, peer: HomePeer, msg: m.VisitRequest) -> Coroutine[None, None, None] | None:
        dept = self.departments.get(msg.department)
        if dept is None:
            self._refuse(peer, msg.department, "unknown_department")
            return None
        if peer.visit_id is not None and self.rooms.get(peer.visit_id) is not None:
            self._refuse(peer, msg.department, "already_waiting")
            return None
        now = self.now()
        if msg.booking is None and not dept.hours.is_open(now):  # a booked citizen may come before opening
            nxt = dept.hours.next_opening(now)
            self._refuse(peer, dept.slug, "closed", next_opening=nxt.isoformat() if nxt else None)
            return None
        if self.online_visits(dept.slug) >= (dept.online_cap if dept.online_cap is not None else self.online_cap):
            self._refuse(peer, dept.slug, "online_full")  # changes nothing, so it takes no request from the address
            return None
        if wait := self.home_requests.take(peer.address):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many visit requests from this address; try again in "
                                f"{seconds} s", retry_after_s=seconds)
        if msg.booking is not None:
            return self._home_request_booked(peer, msg)
        self._home_queue(peer, msg, None)
        return None

    async def _home_request_booked(self, peer: HomePeer, msg: m.VisitRequest) -> None:
        verdict = await self.check_in_booking(msg.booking, msg.department)
        if isinstance(verdict, BookingRefused):
            peer.link.send(encode(verdict.message(msg.department)))
            return
        # The database was asked meanwhile: the browser may have gone, or the department.
        if (self.homes.get(peer.id) is not peer or peer.link.closed or msg.department not in self.departments
                or (peer.visit_id is not None and self.rooms.get(peer.visit_id) is not None)):
            await self.release_booking(verdict)
            return
        self._home_queue(peer, msg, verdict)

    def _home_queue(self, peer: HomePeer, msg: m.VisitRequest, booked: BookingAccepted | None) -> None:
        visit = Visit(kiosk_id=None, kiosk_location="", department=msg.department, language=msg.language,
                      origin="online", home_id=peer.id, slot_start=booked.slot_start if booked else None,
                      booking=booked.code if booked else None)
        self.rooms.add(visit)
        peer.visit_id = visit.id
        token = self._issue_token(visit)
        position, wait = self._tell_place(visit)
        peer.link.send(encode(m.VisitQueued(type="visit.queued", visit_id=visit.id, resume_token=token,
                                            department=visit.department, position=position, expected_wait_s=wait)))
        self._to_department(visit.department, encode(m.QueueJoined(type="queue.joined", visit=visit.wire())))
        if booked is not None:
            self._update_positions(visit.department)  # a booked visit may go ahead of others
            self._watch_slot(visit)
        log.info("visit from home queued", extra={"department": visit.department, "position": position,
                                                  "booked": booked is not None})

    def _home_resume(self, peer: HomePeer, msg: m.VisitResume) -> None:
        """The page reconnected (a phone's network changed, central restarted): its visit moves to this
        connection, or is put back where its token says it stood."""
        claims = self.tokens.verify(msg.resume_token)
        if (claims is None or claims.visit_id != msg.visit_id or claims.kiosk_id is not None
                or (peer.visit_id is not None and peer.visit_id != msg.visit_id and self.rooms.get(peer.visit_id))):
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, NOT_YOURS)
        visit = self.rooms.get(msg.visit_id)
        if visit is None:  # central restarted: put it back as a kiosk's (resume.py)
            visit = self._restore_visit(claims, kiosk_id=None, kiosk_location="", origin="online", home_id=peer.id)
        if visit is None or visit.origin != "online":
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, NOT_YOURS)
        old = self.homes.get(visit.home_id) if visit.home_id != peer.id else None
        if old is not None:  # the same page twice (an old connection not yet timed out): the newer one has it
            old.visit_id = None
            old.link.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                         detail="this visit continues in another connection")))
            old.link.close()
        visit.home_id, peer.visit_id = peer.id, visit.id
        self._tell_resumed(peer.link, visit)
