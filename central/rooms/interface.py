"""What the hub needs of waiting rooms, whichever implementation holds them.

Two implementations keep this contract (tests/central/test_rooms_contract.py runs the same
tests against both): :class:`central.rooms.waiting_rooms.WaitingRooms`, in process memory,
the embedded default; and :class:`central.rooms.redis_rooms.RedisRooms`, which keeps those
in-memory rooms as the leading central's working copy and writes every change through to
Redis/Valkey, so that a standby taking over finds every visit in its place
(docs/decisions/0008-several-centrals.md).

Every method is synchronous and runs to completion without awaiting: on one event loop two
clerks can never pick up the same visit (central/live/core.py relies on it).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from central.rooms.visit import Visit


class Rooms(Protocol):
    clock: Callable[[], float]  # wall clock (Unix seconds), compared with booked slots; the hub sets its own

    # -- reading ---------------------------------------------------------------
    def get(self, visit_id: str) -> Visit | None: ...

    def waiting(self, department: str) -> list[Visit]:
        """The department's waiting visits, next first."""

    def position(self, visit: Visit) -> int:
        """1-based place in its department's queue."""

    def of_kiosk(self, kiosk_id: int) -> Visit | None: ...

    def all(self) -> list[Visit]: ...

    def __len__(self) -> int: ...

    # -- changing --------------------------------------------------------------
    def add(self, visit: Visit) -> None:
        """A new visit, or one restored (then possibly already in a call)."""

    def pick_up(self, clerk_id: int, *, visit_id: str | None = None, department: str | None = None) -> Visit:
        """Hand a waiting visit to a clerk: a named one, or the next of ``department``; a ProtocolError
        (not_your_visit, already_taken, forbidden, queue_empty) when there is none to hand."""

    def transfer(self, visit: Visit, department: str) -> None:
        """Put the visit into a waiting room at the place its arrival (and booked slot) earns."""

    def remove(self, visit: Visit) -> None:
        """Forget the visit entirely (end of visit)."""
