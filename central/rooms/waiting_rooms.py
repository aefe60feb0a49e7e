"""In-process waiting rooms: the embedded default for a single central.

Every method runs to completion without awaiting, so on one event loop two
clerks can never pick up the same visit: the second finds it gone.
"""
from __future__ import annotations

import bisect
import time

from central.rooms.visit import Visit, VisitState
from protocol.errors import ErrorCode, ProtocolError


class WaitingRooms:
    def __init__(self) -> None:
        self._visits: dict[str, Visit] = {}
        # Per department, waiting visits ordered by (arrival, id). A transferred
        # visit keeps its arrival time, so it lands where it would have stood.
        self._queues: dict[str, list[tuple[float, str]]] = {}

    # -- reading ---------------------------------------------------------------
    def get(self, visit_id: str) -> Visit | None:
        return self._visits.get(visit_id)

    def waiting(self, department: str) -> list[Visit]:
        return [self._visits[vid] for _, vid in self._queues.get(department, ())]

    def position(self, visit: Visit) -> int:
        """1-based place in its department's queue."""
        queue = self._queues.get(visit.department, [])
        return bisect.bisect_left(queue, (visit.arrived_mono, visit.id)) + 1

    def of_kiosk(self, kiosk_id: int) -> Visit | None:
        return next((v for v in self._visits.values() if v.kiosk_id == kiosk_id), None)

    def all(self) -> list[Visit]:
        return list(self._visits.values())

    def __len__(self) -> int:
        return len(self._visits)

    # -- changing --------------------------------------------------------------
    def add(self, visit: Visit) -> None:
        """A new visit, or one restored after a restart (then possibly already in a call)."""
        self._visits[visit.id] = visit
        if visit.state is VisitState.WAITING:
            self._enqueue(visit)

    def pick_up(self, clerk_id: int, *, visit_id: str | None = None, department: str | None = None) -> Visit:
        """Hand a waiting visit to a clerk: a named one, or the longest-waiting of ``department``."""
        if visit_id is not None:
            visit = self._visits.get(visit_id)
            if visit is None:
                raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this visit has ended")
            if visit.state is not VisitState.WAITING:
                raise ProtocolError(ErrorCode.ALREADY_TAKEN, "another clerk has already picked up this visit")
            if department is not None and visit.department != department:
                raise ProtocolError(ErrorCode.FORBIDDEN, "visit waits in another department")
        else:
            queue = self._queues.get(department or "", [])
            if not queue:
                raise ProtocolError(ErrorCode.QUEUE_EMPTY, "nobody is waiting in this department")
            visit = self._visits[queue[0][1]]
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
        its arrival time earns."""
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
        visit.messages.clear()

    # -- internals -------------------------------------------------------------
    def _enqueue(self, visit: Visit) -> None:
        bisect.insort(self._queues.setdefault(visit.department, []), (visit.arrived_mono, visit.id))

    def _dequeue(self, visit: Visit) -> None:
        queue = self._queues.get(visit.department, [])
        i = bisect.bisect_left(queue, (visit.arrived_mono, visit.id))
        if i < len(queue) and queue[i][1] == visit.id:
            del queue[i]
        if not queue:
            self._queues.pop(visit.department, None)
