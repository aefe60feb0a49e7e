"""In-process waiting rooms: the embedded default for a single central.

Every method runs to completion without awaiting, so on one event loop two
clerks can never pick up the same visit: the second finds it gone.

Order in a department's room: first the booked visits whose slot has begun (by slot start,
then arrival), then everyone else by arrival. A booked visit that checked in early waits
among the walk-ins until its slot begins, then moves ahead; it keeps that place after its
slot is over (it was on time). Arrival and slot start travel with a transferred or restored
visit, so it lands where it would have stood.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from central.rooms.visit import Visit, VisitState
from protocol.errors import ErrorCode, ProtocolError


def queue_order(now: float) -> Callable[[Visit], tuple]:
    """The sort key of a waiting room at ``now`` (Unix seconds; the hub's clock)."""
    def key(visit: Visit) -> tuple:
        if visit.slot_start is not None and visit.slot_start <= now:
            return (0, visit.slot_start, visit.arrived_mono, visit.id)
        return (1, 0.0, visit.arrived_mono, visit.id)
    return key


class WaitingRooms:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall clock, compared with slot starts; the hub sets its own
        self._visits: dict[str, Visit] = {}
        # Per department, its waiting visits (by id). Rooms hold tens of visits, so sorting on
        # each read is cheap, and the order can depend on the time (a slot begins).
        self._queues: dict[str, dict[str, Visit]] = {}
        # Per kiosk, its visits (at most one, but in the order they came, as a scan of all would find them):
        # asked at every visit request, which at hundreds a second must not look at every visit.
        self._of_kiosk: dict[int, dict[str, Visit]] = {}

    # -- reading ---------------------------------------------------------------
    def get(self, visit_id: str) -> Visit | None:
        return self._visits.get(visit_id)

    def waiting(self, department: str) -> list[Visit]:
        """The department's waiting visits, next first."""
        return sorted(self._queues.get(department, {}).values(), key=queue_order(self.clock()))

    def position(self, visit: Visit) -> int:
        """1-based place in its department's queue."""
        key = queue_order(self.clock())
        mine = key(visit)
        return 1 + sum(key(other) < mine for other in self._queues.get(visit.department, {}).values())

    def of_kiosk(self, kiosk_id: int) -> Visit | None:
        visits = self._of_kiosk.get(kiosk_id)
        return next(iter(visits.values())) if visits else None

    def all(self) -> list[Visit]:
        return list(self._visits.values())

    def __len__(self) -> int:
        return len(self._visits)

    # -- changing --------------------------------------------------------------
    def add(self, visit: Visit) -> None:
        """A new visit, or one restored after a restart (then possibly already in a call)."""
        self._visits[visit.id] = visit
        if visit.kiosk_id is not None:
            self._of_kiosk.setdefault(visit.kiosk_id, {})[visit.id] = visit
        if visit.state is VisitState.WAITING:
            self._enqueue(visit)

    def pick_up(self, clerk_id: int, *, visit_id: str | None = None, department: str | None = None) -> Visit:
        """Hand a waiting visit to a clerk: a named one, or the next of ``department``."""
        if visit_id is not None:
            visit = self._visits.get(visit_id)
            if visit is None:
                raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended")
            if visit.state is not VisitState.WAITING:
                raise ProtocolError(ErrorCode.ALREADY_TAKEN, "another clerk has already picked up this visit")
            if department is not None and visit.department != department:
                raise ProtocolError(ErrorCode.FORBIDDEN, "visit waits in another department")
        else:
            queue = self.waiting(department or "")
            if not queue:
                raise ProtocolError(ErrorCode.QUEUE_EMPTY, "nobody is waiting in this department")
            visit = queue[0]
        self._dequeue(visit)
        visit.state = VisitState.IN_CALL
        visit.clerk_id = clerk_id
        visit.picked_up_mono = time.monotonic()
        visit.picked_up_at = time.time()
        if visit.first_wait_s is None:
            visit.first_wait_s = visit.picked_up_mono - visit.arrived_mono
        return visit

    def transfer(self, visit: Visit, department: str) -> None:
        """Put the visit into a waiting room (another, or its own after a failed call) at the place
        its arrival time (and booked slot) earns."""
        if visit.state is VisitState.WAITING:
            self._dequeue(visit)
        visit.state = VisitState.WAITING
        visit.clerk_id = None
        visit.picked_up_mono = visit.picked_up_at = None
        visit.kiosk_has_call = False
        visit.department = department
        self._enqueue(visit)

    def remove(self, visit: Visit) -> None:
        """Forget the visit entirely (end of visit)."""
        if visit.state is VisitState.WAITING:
            self._dequeue(visit)
        self._visits.pop(visit.id, None)
        if (visits := self._of_kiosk.get(visit.kiosk_id)) is not None:
            visits.pop(visit.id, None)
            if not visits:
                del self._of_kiosk[visit.kiosk_id]
        visit.messages.clear()

    # -- internals -------------------------------------------------------------
    def _enqueue(self, visit: Visit) -> None:
        self._queues.setdefault(visit.department, {})[visit.id] = visit

    def _dequeue(self, visit: Visit) -> None:
        queue = self._queues.get(visit.department, {})
        queue.pop(visit.id, None)
        if not queue:
            self._queues.pop(visit.department, None)
