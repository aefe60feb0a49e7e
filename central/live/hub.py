"""The hub: applies kiosk and clerk messages to the waiting rooms and tells everyone concerned.

Every public method is synchronous and only queues frames on links, so each
runs atomically on the event loop: a visit is either picked up by one clerk or
still waiting, never both.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from central.live.link import Link
from central.rooms import Visit, VisitState, WaitingRooms
from central.rooms.estimate import WaitEstimator
from central.storage.database import Department, Kiosk, Staff
from protocol import messages as m
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_VISIT = 10

# (department, wait seconds or None, call seconds or None, day) -> stored as anonymous counters
RecordVisit = Callable[[str, "float | None", "float | None", dt.date], None]


@dataclass(eq=False)
class KioskPeer:
    kiosk: Kiosk
    link: Link


@dataclass(eq=False)
class StaffPeer:
    staff: Staff
    link: Link
    presence: str = "available"
    visit_id: str | None = None  # the call this clerk is in


@dataclass
class DepartmentStatus:
    department: Department
    open: bool
    next_opening: dt.datetime | None
    clerks_available: int
    clerks_busy: int
    waiting: int
    typical_wait_s: int


@dataclass
class Hub:
    rooms: WaitingRooms
    estimator: WaitEstimator
    departments: dict[str, Department]
    ice_servers: list[m.IceServer]
    record_visit: RecordVisit
    resume_grace_s: float = 120.0
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    kiosks: dict[int, KioskPeer] = field(default_factory=dict)
    staff: dict[int, StaffPeer] = field(default_factory=dict)
    _grace: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    # == departments ===========================================================
    def set_departments(self, departments: list[Department]) -> None:
        self.departments = {d.slug: d for d in departments}

    def department_info(self) -> list[m.DepartmentInfo]:
        now = self.now()
        out = []
        for d in self.departments.values():
            is_open = d.hours.is_open(now)
            nxt = None if is_open else d.hours.next_opening(now)
            out.append(m.DepartmentInfo(slug=d.slug, name=d.name, open=is_open,
                                        next_opening=nxt.isoformat() if nxt else None, languages=list(d.languages)))
        return out

    def status(self) -> list[DepartmentStatus]:
        now = self.now()
        out = []
        for d in self.departments.values():
            clerks, free = self._clerks(d.slug)
            waiting = len(self.rooms.waiting(d.slug))
            is_open = d.hours.is_open(now)
            out.append(DepartmentStatus(
                d, is_open, None if is_open else d.hours.next_opening(now), free, clerks - free, waiting,
                self.estimator.expected_wait_s(d.slug, waiting + 1, clerks, free)))
        return out

    # == kiosks ================================================================
    def kiosk_connected(self, peer: KioskPeer) -> None:
        old = self.kiosks.get(peer.kiosk.id)
        if old is not None:
            old.link.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                         detail="this kiosk connected again elsewhere; closing this connection")))
            old.link.close()
        self.kiosks[peer.kiosk.id] = peer
        peer.link.send(encode(m.Welcome(type="welcome", kiosk_location=peer.kiosk.location,
                                        ice_servers=self.ice_servers, departments=self.department_info())))

    def kiosk_disconnected(self, peer: KioskPeer) -> None:
        if self.kiosks.get(peer.kiosk.id) is not peer:
            return  # replaced by a newer connection
        del self.kiosks[peer.kiosk.id]
        visit = self.rooms.of_kiosk(peer.kiosk.id)
        if visit is not None:
            self._start_grace(visit, "kiosk_lost")

    def kiosk_message(self, peer: KioskPeer, msg: m.Message) -> None:
        if isinstance(msg, m.Ping):
            peer.link.send(encode(m.Pong(type="pong")))
        elif isinstance(msg, m.VisitRequest):
            self._request(peer, msg)
        elif isinstance(msg, m.VisitResume):
            self._resume(peer, msg)
        else:
            visit = self._kiosk_visit(peer, msg.visit_id)
            if isinstance(msg, m.VisitCancel):
                self._require(visit, VisitState.WAITING, "only a waiting visit can be cancelled; hang up instead")
                self._end(visit, "cancelled")
            elif isinstance(msg, m.VisitHangup):
                self._require(visit, VisitState.IN_CALL, "there is no call to hang up; cancel the wait instead")
                self._end(visit, "hangup_kiosk")
            elif isinstance(msg, m.RtcState):
                self._require(visit, VisitState.IN_CALL, "no clerk has picked up this visit yet")
            elif isinstance(msg, (m.RtcOffer, m.RtcCandidate)):
                self._require(visit, VisitState.IN_CALL, "no clerk has picked up this visit yet")
                clerk = self.staff.get(visit.clerk_id)
                if clerk is not None:
                    clerk.link.send(encode(msg))
            else:  # pragma: no cover - KIOSK_TO_CENTRAL and this method must list the same types
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")

    def _request(self, peer: KioskPeer, msg: m.VisitRequest) -> None:
        dept = self.departments.get(msg.department)
        if dept is None:
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=msg.department,
                                                 reason="unknown_department")))
            return
        if self.rooms.of_kiosk(peer.kiosk.id) is not None:
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=msg.department,
                                                 reason="already_waiting")))
            return
        now = self.now()
        if not dept.hours.is_open(now):
            nxt = dept.hours.next_opening(now)
            peer.link.send(encode(m.VisitRefused(type="visit.refused", department=dept.slug, reason="closed",
                                                 next_opening=nxt.isoformat() if nxt else None)))
            return
        visit = Visit(kiosk_id=peer.kiosk.id, kiosk_location=peer.kiosk.location, department=dept.slug,
                      language=msg.language)
        self.rooms.add(visit)
        position, wait = self._estimate(visit)
        visit.last_told = (position, wait)
        peer.link.send(encode(m.VisitQueued(type="visit.queued", visit_id=visit.id, resume_token=visit.resume_token,
                                            department=dept.slug, position=position, expected_wait_s=wait)))
        self._to_department(dept.slug, encode(m.QueueJoined(type="queue.joined", visit=visit.wire())))
        log.info("visit queued", extra={"department": dept.slug, "position": position})

    def _resume(self, peer: KioskPeer, msg: m.VisitResume) -> None:
        visit = self.rooms.get(msg.visit_id)
        if visit is None or visit.kiosk_id != peer.kiosk.id or visit.resume_token != msg.resume_token:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended or is not yours; start a new one")
        self._cancel_grace(visit)
        if visit.state is VisitState.WAITING:
            position, wait = self._estimate(visit)
            visit.last_told = (position, wait)
            peer.link.send(encode(m.VisitResumed(type="visit.resumed", visit_id=visit.id, department=visit.department,
                                                 state="waiting", position=position, expected_wait_s=wait,
                                                 resume_token=visit.resume_token)))
        else:
            peer.link.send(encode(m.VisitResumed(type="visit.resumed", visit_id=visit.id, department=visit.department,
                                                 state="in_call", resume_token=visit.resume_token)))

    def _kiosk_visit(self, peer: KioskPeer, visit_id: str) -> Visit:
        visit = self.rooms.get(visit_id)
        if visit is None or visit.kiosk_id != peer.kiosk.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "no visit of this kiosk has that id")
        return visit

    # == staff =================================================================
    def staff_connected(self, peer: StaffPeer) -> None:
        old = self.staff.get(peer.staff.id)
        if old is not None:
            # A second tab takes over: the call (if any) and presence move with it.
            peer.presence, peer.visit_id = old.presence, old.visit_id
            old.link.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                         detail="the console was opened in another window")))
            old.link.close()
        self.staff[peer.staff.id] = peer
        # A clerk whose console lost its connection mid-call gets the call back:
        # both sides negotiate afresh, since the old page's peer connection is gone.
        visit = self.rooms.get(peer.visit_id) if peer.visit_id else next(
            (v for v in self.rooms.all() if v.clerk_id == peer.staff.id and v.state is VisitState.IN_CALL), None)
        if visit is not None:
            self._cancel_grace(visit)
            peer.visit_id, peer.presence = visit.id, "in_call"
        peer.link.send(encode(self._snapshot(peer)))
        if visit is not None:
            peer.link.send(encode(m.CallAssigned(type="call.assigned", visit=visit.wire(),
                                                 ice_servers=self.ice_servers)))
            if (kiosk := self.kiosks.get(visit.kiosk_id)) is not None:
                kiosk.link.send(encode(m.CallStart(type="call.start", visit_id=visit.id,
                                                   ice_servers=self.ice_servers, resume_token=visit.resume_token)))
        self._update_positions(*peer.staff.departments)

    def staff_disconnected(self, peer: StaffPeer) -> None:
        if self.staff.get(peer.staff.id) is not peer:
            return
        del self.staff[peer.staff.id]
        if peer.visit_id and (visit := self.rooms.get(peer.visit_id)) is not None:
            self._start_grace(visit, "staff_lost")
        self._update_positions(*peer.staff.departments)

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
            kiosk = self.kiosks.get(visit.kiosk_id)
            if kiosk is not None:
                kiosk.link.send(encode(m.VisitMessageToKiosk(type="visit.message", visit_id=visit.id, text=msg.text)))
        elif isinstance(msg, (m.VisitHangup, m.RtcAnswer, m.RtcCandidate, m.RtcState, m.CallRestart)):
            visit = self.rooms.get(msg.visit_id)
            if visit is None or visit.clerk_id != peer.staff.id:
                raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "you are not in a call with this visit")
            if isinstance(msg, m.VisitHangup):
                self._end(visit, "hangup_staff")
            elif isinstance(msg, m.RtcState):
                pass
            elif isinstance(msg, m.CallRestart):
                if (kiosk := self.kiosks.get(visit.kiosk_id)) is not None:
                    kiosk.link.send(encode(m.CallStart(type="call.start", visit_id=visit.id,
                                                       ice_servers=self.ice_servers,
                                                       resume_token=visit.resume_token)))
            elif (kiosk := self.kiosks.get(visit.kiosk_id)) is not None:
                kiosk.link.send(encode(msg))
        else:  # pragma: no cover
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")

    def _staff_visit(self, peer: StaffPeer, visit_id: str) -> Visit:
        """A visit this clerk may act on: in their call, or waiting in one of their departments."""
        visit = self.rooms.get(visit_id)
        if visit is None:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended")
        if visit.clerk_id == peer.staff.id:
            return visit
        if visit.state is VisitState.WAITING and visit.department in peer.staff.departments:
            return visit
        if visit.state is VisitState.IN_CALL:
            raise ProtocolError(ErrorCode.ALREADY_TAKEN, "another clerk is in a call with this visit")
        raise ProtocolError(ErrorCode.FORBIDDEN, "this visit waits in a department you do not serve")

    def _pickup(self, peer: StaffPeer, msg: m.VisitPickup) -> None:
        if peer.visit_id is not None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "hang up the current call before picking up another")
        if msg.visit_id is None and msg.department is None:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "name a visit_id or a department")
        department = msg.department
        if msg.visit_id is not None:
            visit = self.rooms.get(msg.visit_id)
            if visit is None:
                raise ProtocolError(ErrorCode.ALREADY_TAKEN, "this visit is no longer waiting")
            department = visit.department
        if department not in peer.staff.departments:
            raise ProtocolError(ErrorCode.FORBIDDEN, "you do not serve this department")
        visit = self.rooms.pick_up(peer.staff.id, visit_id=msg.visit_id, department=department)
        peer.visit_id = visit.id
        peer.presence = "in_call"
        peer.link.send(encode(m.CallAssigned(type="call.assigned", visit=visit.wire(), ice_servers=self.ice_servers)))
        peer.link.send(encode(m.PresenceChanged(type="presence.changed", presence="in_call")))
        kiosk = self.kiosks.get(visit.kiosk_id)
        if kiosk is not None:
            kiosk.link.send(encode(m.CallStart(type="call.start", visit_id=visit.id, ice_servers=self.ice_servers,
                                               resume_token=visit.resume_token)))
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
        position, wait = self._estimate(visit)
        visit.last_told = (position, wait)
        kiosk = self.kiosks.get(visit.kiosk_id)
        if kiosk is not None:
            kiosk.link.send(encode(m.VisitTransferred(type="visit.transferred", visit_id=visit.id,
                                                      department=target.slug, position=position,
                                                      expected_wait_s=wait, resume_token=visit.resume_token)))
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
                                 ice_servers=self.ice_servers, server_time=time.time())

    # == ending ================================================================
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
        kiosk = self.kiosks.get(visit.kiosk_id)
        if kiosk is not None:
            kiosk.link.send(encode(m.VisitEnded(type="visit.ended", visit_id=visit.id, reason=reason)))
        department = visit.department
        self.rooms.remove(visit)
        self.record_visit(department, visit.first_wait_s, duration, self.now().date())
        self._update_positions(department)

    def _free_clerk(self, visit: Visit, reason: str) -> None:
        clerk = self.staff.get(visit.clerk_id) if visit.clerk_id is not None else None
        if clerk is not None and clerk.visit_id == visit.id:
            clerk.visit_id = None
            clerk.presence = "available"
            clerk.link.send(encode(m.VisitEnded(type="visit.ended", visit_id=visit.id, reason=reason)))
            clerk.link.send(encode(m.PresenceChanged(type="presence.changed", presence="available")))

    def _start_grace(self, visit: Visit, reason: str) -> None:
        self._cancel_grace(visit)
        loop = asyncio.get_running_loop()
        self._grace[visit.id] = loop.call_later(self.resume_grace_s, self._grace_expired, visit.id, reason)

    def _cancel_grace(self, visit: Visit) -> None:
        handle = self._grace.pop(visit.id, None)
        if handle is not None:
            handle.cancel()

    def _grace_expired(self, visit_id: str, reason: str) -> None:
        self._grace.pop(visit_id, None)
        visit = self.rooms.get(visit_id)
        if visit is not None:
            self._end(visit, reason)

    def end_all(self) -> None:
        """Shutdown: end every visit so nothing of them survives the process."""
        for visit in self.rooms.all():
            self._end(visit, "staff_lost" if visit.state is VisitState.IN_CALL else "cancelled")

    # == helpers ===============================================================
    @staticmethod
    def _require(visit: Visit, state: VisitState, detail: str) -> None:
        if visit.state is not state:
            raise ProtocolError(ErrorCode.WRONG_STATE, detail)

    def _clerks(self, department: str) -> tuple[int, int]:
        """(clerks on duty, of which available) for a department."""
        on_duty = free = 0
        for peer in self.staff.values():
            if department in peer.staff.departments and peer.presence != "away":
                on_duty += 1
                free += peer.presence == "available"
        return on_duty, free

    def _estimate(self, visit: Visit) -> tuple[int, int]:
        position = self.rooms.position(visit)
        clerks, free = self._clerks(visit.department)
        return position, self.estimator.expected_wait_s(visit.department, position, clerks, free)

    def _update_positions(self, *departments: str) -> None:
        """Tell every waiting kiosk of these departments its place and wait, if either changed."""
        for department in set(departments):
            clerks, free = self._clerks(department)
            for position, visit in enumerate(self.rooms.waiting(department), start=1):
                told = (position, self.estimator.expected_wait_s(department, position, clerks, free))
                if told == visit.last_told:
                    continue
                visit.last_told = told
                kiosk = self.kiosks.get(visit.kiosk_id)
                if kiosk is not None:
                    kiosk.link.send(encode(m.VisitPosition(type="visit.position", visit_id=visit.id,
                                                           department=department, position=told[0],
                                                           expected_wait_s=told[1])))

    def _to_department(self, department: str, frame: str) -> None:
        for peer in self.staff.values():
            if department in peer.staff.departments:
                peer.link.send(frame)
