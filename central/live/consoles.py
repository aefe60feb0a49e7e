"""The connected clerk consoles, by staff id and by department.

Every visit that joins or leaves a room is told to the consoles of its department, and the wait it is
told counts that department's clerks. With hundreds of consoles over dozens of departments, looking at
every console for each of those was the hub's largest cost per visit (docs/benchmarks.md, "Central at
scale"); the index by department makes both as cheap as the department is small.
"""
from __future__ import annotations

from collections.abc import Iterable

from central.live.peers import StaffPeer
from protocol.errors import AmtsklingelError


class BulkChangeRefused(AmtsklingelError, TypeError):
    """A dict-wide change (update, setdefault, ...) of StaffPeers, which would bypass its department index."""


class StaffPeers(dict[int, StaffPeer]):
    """``dict`` of staff id -> console that also keeps the consoles of each department.

    Assigning and deleting keep the index; a console whose clerk's departments change is moved with
    :meth:`departments_changed`. The dict methods that would bypass the index refuse.
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_department: dict[str, dict[int, StaffPeer]] = {}

    def serving(self, department: str) -> Iterable[StaffPeer]:
        """The consoles of the clerks who serve ``department``."""
        return self._by_department.get(department, {}).values()

    def departments_changed(self, peer: StaffPeer, before: Iterable[str]) -> None:
        """``peer.staff`` now has other departments than ``before``."""
        self._drop(peer.staff.id, before)
        self._add(peer)

    def __setitem__(self, staff_id: int, peer: StaffPeer) -> None:
        if (old := self.get(staff_id)) is not None:
            self._drop(staff_id, old.staff.departments)
        super().__setitem__(staff_id, peer)
        self._add(peer)

    def __delitem__(self, staff_id: int) -> None:
        peer = self[staff_id]
        super().__delitem__(staff_id)
        self._drop(staff_id, peer.staff.departments)

    def pop(self, staff_id: int, *default):
        if staff_id not in self:
            return super().pop(staff_id, *default)
        peer = self[staff_id]
        del self[staff_id]
        return peer

    def clear(self) -> None:
        super().clear()
        self._by_department.clear()

    def _refuse(self, *_args, **_kwargs):
        raise BulkChangeRefused("StaffPeers keeps an index by department: assign or delete one console at a time")

    update = setdefault = popitem = __ior__ = _refuse

    def _add(self, peer: StaffPeer) -> None:
        for department in peer.staff.departments:
            self._by_department.setdefault(department, {})[peer.staff.id] = peer

    def _drop(self, staff_id: int, departments: Iterable[str]) -> None:
        for department in departments:
            consoles = self._by_department.get(department)
            if consoles is not None:
                consoles.pop(staff_id, None)
                if not consoles:
                    del self._by_department[department]
