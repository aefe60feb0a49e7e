"""The kiosk side of the hub: connect, request a place, resume it, cancel, hang up, relay signaling.

Limits on what one kiosk may send (floods) are checked before a message changes anything: visit
requests per kiosk in :meth:`KioskSide._request`, a call's signaling in central/live/relay.py.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Coroutine

from central.live import ice
from central.live.booked_visits import BookingAccepted, BookingRefused
from central.live.booking_lookup import BookingLookups
from central.live.guest_side import RTC
from central.live.limits import retry_after_s
from central.live.peers import KioskPeer
from central.live.resume import VisitResumption
from central.rooms import Visit, VisitState
from protocol import fleet as f
from protocol import messages as m
from protocol import updates as u
from protocol.booking_lookup import BookingLookup
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

# Reports for the fleet page: stored, never answered.
FLEET_REPORTS = (f.KioskHealth, f.SettingsApplied, f.SelftestReport, f.ActionResult)


# A device lost in a call that the call goes on without: what the clerk is told (protocol.fleet.CallNotice).
CALL_NOTICE_OF_DEVICE = {"camera": "kiosk_camera_failed", "speaker": "kiosk_speaker_failed"}

class KioskSide(VisitResumption, BookingLookups):
    def kiosk_connected(self, peer: KioskPeer) -> None:
        old = self.kiosks.get(peer.kiosk.id)
        if old is not None:
            old.link.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                         detail="this kiosk connected again elsewhere; closing this connection")))
            old.link.close()
        self.kiosks[peer.kiosk.id] = peer
        self.fleet.connected(peer.kiosk.id)
        if (visit := self.rooms.of_kiosk(peer.kiosk.id)) is not None:
            peer.unclaimed_visit_id = visit.id
        self._welcome(peer, self.department_info())
        if peer.settings is not None:
            self.send_settings(peer.kiosk.id, peer.settings)
        self.offer_update(peer)  # update_side.py: the live rollout's bundle, if it reaches this kiosk

    def send_settings(self, kiosk_id: int, settings: f.KioskSettings) -> None:
        """Give a connected kiosk its (changed) settings; its location also goes with its next visits."""
        peer = self.kiosks.get(kiosk_id)
        if peer is None:
            return  # it gets them when it connects
        offered_before = peer.settings.departments if peer.settings is not None else None
        peer.settings = settings
        peer.kiosk = dataclasses.replace(peer.kiosk, location=settings.location)
        peer.link.send(encode(f.SettingsMessage(type="kiosk.settings", settings=settings)))
        if settings.departments != offered_before:  # the kiosk needs the state of departments it now offers
            self._welcome(peer, self.department_info())

    def resend_departments(self) -> None:
        """A department opened or closed: every kiosk gets a fresh ``welcome`` with the departments' state."""
        departments = self.department_info()
        for peer in self.kiosks.values():
            self._welcome(peer, departments)

    def _welcome(self, peer: KioskPeer, departments: list[m.DepartmentInfo]) -> None:
        """The departments' state, only of those this kiosk offers: a kiosk claimed a moment ago, which has
        no settings yet, must not show a department it will not offer, nor learn of it."""
        if peer.settings is not None:
            offered = set(peer.settings.departments)
            departments = [d for d in departments if d.slug in offered]
        peer.link.send(encode(m.Welcome(type="welcome", kiosk_location=peer.kiosk.location,
                                        ice_servers=self.ice_for(ice.kiosk(peer.kiosk.id)),
                                        departments=departments)))

    def send_action(self, kiosk_id: int, action: f.KioskAction) -> bool:
        """Send an action to the kiosk; False when it is not connected."""
        peer = self.kiosks.get(kiosk_id)
        if peer is None:
            return False
        peer.link.send(encode(action))
        return True

    def kiosk_disconnected(self, peer: KioskPeer) -> None:
        if self.kiosks.get(peer.kiosk.id) is not peer:
            return  # replaced by a newer connection
        del self.kiosks[peer.kiosk.id]
        self.fleet.disconnected(peer.kiosk.id)
        visit = self.rooms.of_kiosk(peer.kiosk.id)
        if visit is not None:
            self._start_grace(visit, "kiosk_lost")

    def kiosk_message(self, peer: KioskPeer, msg: m.Message) -> Coroutine[None, None, None] | None:
        # Reports (health, settings applied, self-test, faults) say nothing about visits: a unit may send
        # them on connecting before its controller resumes its visit, so they settle nothing.
        if peer.unclaimed_visit_id is not None and not isinstance(msg, (*FLEET_REPORTS, f.DeviceFault,
                                                                                  u.UpdateStatus)):
            self._settle_unclaimed_visit(peer, msg)
        if isinstance(msg, m.Ping):
            peer.link.send(encode(m.Pong(type="pong")))
        elif isinstance(msg, m.VisitRequest):
            return self._request(peer, msg)
        elif isinstance(msg, m.VisitResume):
            self._resume(peer, msg)
        elif isinstance(msg, BookingLookup):
            return self._booking_lookup(peer, msg)
        elif isinstance(msg, f.DeviceFault):
            self._limit_reports(peer, msg)
            self._device_fault(peer, msg)
        elif isinstance(msg, u.UpdateStatus):
            self.update_status(peer, msg)
        elif isinstance(msg, FLEET_REPORTS):
            self._limit_reports(peer, msg)
            self.fleet.kiosk_message(peer.kiosk.id, msg)
        else:
            visit = self._kiosk_visit(peer, msg.visit_id)
            if isinstance(msg, RTC) and (msg := self._pair(visit, "citizen", msg)) is None:
                return  # a pair with a guest (guest_side.py)
            if isinstance(msg, m.VisitCancel):
                self._require(visit, VisitState.WAITING, "only a waiting visit can be cancelled; hang up instead")
                self._end(visit, "cancelled")
            elif isinstance(msg, m.VisitHangup):
                self._require(visit, VisitState.IN_CALL, "there is no call to hang up; cancel the wait instead")
                self._end(visit, "device_failed" if msg.reason == "device_failed" else "hangup_kiosk")
            elif isinstance(msg, (m.RtcState, m.RtcOffer, m.RtcCandidate)):
                self._citizen_signal(visit, msg)
            else:  # pragma: no cover - KIOSK_TO_CENTRAL and this method must list the same types
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")

    def _limit_reports(self, peer: KioskPeer, msg: m.Message) -> None:
        """A flood of fleet reports is refused, each kind on its own; the kiosk stays connected."""
        if wait := self.fleet_reports.take((peer.kiosk.id, msg.type)):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many {msg.type} reports from this kiosk; the next "
                                f"is accepted in {seconds} s", retry_after_s=seconds)

    def _device_fault(self, peer: KioskPeer, msg: f.DeviceFault) -> None:
        """Counted for the fleet page; in a call, a lost camera or speaker is also the clerk's to know (the
        call goes on without it; a lost microphone ends the call with its own reason)."""
        self.fleet.kiosk_message(peer.kiosk.id, msg)
        notice = CALL_NOTICE_OF_DEVICE.get(msg.device)
        if msg.visit_id is None or notice is None:
            return
        visit = self._kiosk_visit(peer, msg.visit_id)
        clerk = self.staff.get(visit.clerk_id) if visit.clerk_id is not None else None
        if visit.state is VisitState.IN_CALL and clerk is not None and clerk.visit_id == visit.id:
            clerk.link.send(encode(f.CallNotice(type="call.notice", visit_id=visit.id, notice=notice)))

    def _settle_unclaimed_visit(self, peer: KioskPeer, first: m.Message) -> None:
        """The appliance keeps no visit across its own restart: a first message that does not resume
        the visit central still holds for this kiosk means that visit is gone for good. Ending it now
        (before ``first`` is handled) frees the queue place and lets a new request succeed."""
        visit_id, peer.unclaimed_visit_id = peer.unclaimed_visit_id, None
        if isinstance(first, m.VisitResume) and first.visit_id == visit_id:
            return
        visit = self.rooms.get(visit_id)
        if visit is not None and visit.kiosk_id == peer.kiosk.id:
            log.info("kiosk came back without its visit; ending it", extra={"department": visit.department})
            self._end(visit, "kiosk_lost")

    def _request(self, peer: KioskPeer, msg: m.VisitRequest) -> Coroutine[None, None, None] | None:
        """Queue the visit; with a booking code, return the coroutine that checks it (the socket awaits it)."""
        dept = self.departments.get(msg.department)
        if dept is None or (peer.settings is not None and dept.slug not in peer.settings.departments):
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=msg.department,
                                                 reason="unknown_department")))
            return None
        if self.rooms.of_kiosk(peer.kiosk.id) is not None:
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=msg.department,
                                                 reason="already_waiting")))
            return None
        now = self.now()
        if msg.booking is None and not dept.hours.is_open(now):  # a booked citizen may come before opening
            nxt = dept.hours.next_opening(now)
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=dept.slug, reason="closed",
                                                 next_opening=nxt.isoformat() if nxt else None)))
            return None
        if wait := self.visit_requests.take(peer.kiosk.id):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many visit requests from this kiosk; try again in "
                                f"{seconds} s", retry_after_s=seconds)
        if msg.booking is not None:
            return self._request_booked(peer, msg)
        self._queue(peer, msg, None)
        return None

    async def _request_booked(self, peer: KioskPeer, msg: m.VisitRequest) -> None:
        verdict = await self.check_in_booking(msg.booking, msg.department)
        if isinstance(verdict, BookingRefused):
            peer.link.send(encode(verdict.message(msg.department)))
            return
        # The database was asked meanwhile: the kiosk may have gone, or its department.
        if (self.kiosks.get(peer.kiosk.id) is not peer or peer.link.closed or msg.department not in self.departments
                or self.rooms.of_kiosk(peer.kiosk.id) is not None):
            await self.release_booking(verdict)
            return
        self._queue(peer, msg, verdict)

    def _queue(self, peer: KioskPeer, msg: m.VisitRequest, booked: BookingAccepted | None) -> None:
        visit = Visit(kiosk_id=peer.kiosk.id, kiosk_location=peer.kiosk.location, department=msg.department,
                      language=msg.language, slot_start=booked.slot_start if booked else None,
                      booking=booked.code if booked else None)
        self.rooms.add(visit)
        token = self._issue_token(visit)
        position, wait = self._tell_place(visit)
        peer.link.send(encode(m.VisitQueued(type="visit.queued", visit_id=visit.id, resume_token=token,
                                            department=visit.department, position=position, expected_wait_s=wait)))
        self._to_department(visit.department, encode(m.QueueJoined(type="queue.joined", visit=visit.wire())))
        if booked is not None:
            self._update_positions(visit.department)  # a booked visit may go ahead of others
            self._watch_slot(visit)
        log.info("visit queued", extra={"department": visit.department, "position": position,
                                        "booked": booked is not None})

    def _resume(self, peer: KioskPeer, msg: m.VisitResume) -> None:
        claims = self.tokens.verify(msg.resume_token)
        if claims is None or claims.visit_id != msg.visit_id or claims.kiosk_id != peer.kiosk.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended or is not yours; start a new one")
        visit = self.rooms.get(msg.visit_id)
        if visit is None and self.rooms.of_kiosk(peer.kiosk.id) is None:  # central restarted (resume.py)
            visit = self._restore_visit(claims, kiosk_id=peer.kiosk.id, kiosk_location=peer.kiosk.location)
        if visit is None or visit.kiosk_id != peer.kiosk.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended or is not yours; start a new one")
        self._tell_resumed(peer.link, visit)

    def _kiosk_visit(self, peer: KioskPeer, visit_id: str) -> Visit:
        visit = self.rooms.get(visit_id)
        if visit is None or visit.kiosk_id != peer.kiosk.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "no visit of this kiosk has that id")
        return visit
