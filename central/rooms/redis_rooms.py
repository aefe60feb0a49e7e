"""Waiting rooms written through to Redis/Valkey, for several centrals (one leads, one stands by).

The leading central works on an in-memory :class:`WaitingRooms`, exactly as the embedded
default does, so the hub stays synchronous (two clerks can never take the same visit). Every
change marks the visit; a background task writes the marked visits to Redis in one
round trip (a Lua script, so that a batch lands whole), and a standby that takes over
loads them all back with :meth:`RedisRooms.load` before it accepts a connection:
every visit is in its place at once, even before the kiosks reconnect and resume.

What is written, per visit, is what restores it and its place: ids, kiosk, department,
language, origin, booked slot, arrival and queue key, state, clerk and pick-up time. Never
clerks' messages, SDP or candidates (docs/decisions/0003). All visits live in one hash whose
expiry is the resume grace, renewed with every write and at least every quarter of it: when
no central has led for that long, every kiosk's grace has run out anyway and the visits go.

Writes are fenced by the leader's lease (central/cluster/lease.py): the script first checks
that the lease still holds this central's value, so a central that lost its lease can never
overwrite what the new leader wrote. A refused write calls ``on_fenced``. The writing itself is
central/rooms/fenced_hash.py's, shared with the guest links.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from central.rooms.fenced_hash import Fenced, FencedHash
from central.rooms.visit import Visit, VisitState
from central.rooms.waiting_rooms import WaitingRooms

if TYPE_CHECKING:  # redis is needed only where redis_url is configured
    import redis.asyncio as aioredis

__all__ = ["VISITS_KEY", "Fenced", "RedisRooms", "decode_visit", "encode_visit"]

VISITS_KEY = "amtsklingel:rooms:visits"


# A monotonic instant as wall-clock seconds on this machine. The queue sorts on monotonic arrival
# (immune to clock jumps); stored as wall-clock seconds, the keys of all visits convert back into
# another process's monotonic clock with one offset, so their order is exactly the same there.
def _mono_to_wall() -> float:
    return time.time() - time.monotonic()


def encode_visit(visit: Visit, offset: float) -> str:
    return json.dumps({
        "id": visit.id, "kiosk_id": visit.kiosk_id, "kiosk_location": visit.kiosk_location,
        "department": visit.department, "language": visit.language, "origin": visit.origin,
        "home_id": visit.home_id, "slot_start": visit.slot_start, "booking": visit.booking,
        "arrived_at": visit.arrived_at, "queue_key": visit.arrived_mono + offset, "state": visit.state.value,
        "clerk_id": visit.clerk_id, "picked_up_at": visit.picked_up_at, "first_wait_s": visit.first_wait_s,
    }, separators=(",", ":"))


def decode_visit(text: str | bytes, offset: float) -> Visit:
    d = json.loads(text)
    state = VisitState(d["state"])
    picked_up_at = d["picked_up_at"]
    return Visit(
        id=d["id"], kiosk_id=d["kiosk_id"], kiosk_location=d["kiosk_location"], department=d["department"],
        language=d["language"], origin=d["origin"], home_id=d["home_id"], slot_start=d["slot_start"],
        booking=d["booking"], arrived_at=d["arrived_at"], arrived_mono=d["queue_key"] - offset, state=state,
        clerk_id=d["clerk_id"], picked_up_at=picked_up_at,
        picked_up_mono=None if picked_up_at is None else picked_up_at - offset, first_wait_s=d["first_wait_s"],
        # Media is peer to peer: a call went on while the centrals changed over (as after a restart, 0005).
        kiosk_has_call=state is VisitState.IN_CALL)


class RedisRooms:
    """:class:`central.rooms.interface.Rooms` in memory, written through to Redis.

    ``expiry_s`` is the resume grace. ``lease`` (key, current value) fences the writes; None
    writes unfenced (one central, or tests). Call :meth:`load` before use and run :meth:`run`
    as a task while leading.
    """

    def __init__(self, client: aioredis.Redis, expiry_s: float, *, clock: Callable[[], float] = time.time,
                 lease: Callable[[], tuple[str, str]] | None = None,
                 on_fenced: Callable[[], None] = lambda: None) -> None:
        self._memory = WaitingRooms(clock)
        self.client = client
        self.expiry_s = expiry_s
        self._offset = _mono_to_wall()
        self._hash = FencedHash(client, VISITS_KEY, expiry_s, self._encode, self._memory_ids, lease=lease,
                                on_fenced=on_fenced, what="the waiting rooms")

    # -- the interface: reads from memory, changes marked for writing ------------
    @property
    def clock(self) -> Callable[[], float]:
        return self._memory.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._memory.clock = clock

    def get(self, visit_id: str) -> Visit | None:
        return self._memory.get(visit_id)

    def waiting(self, department: str) -> list[Visit]:
        return self._memory.waiting(department)

    def position(self, visit: Visit) -> int:
        return self._memory.position(visit)

    def of_kiosk(self, kiosk_id: int) -> Visit | None:
        return self._memory.of_kiosk(kiosk_id)

    def all(self) -> list[Visit]:
        return self._memory.all()

    def __len__(self) -> int:
        return len(self._memory)

    def add(self, visit: Visit) -> None:
        self._memory.add(visit)
        self._mark(visit)

    def pick_up(self, clerk_id: int, *, visit_id: str | None = None, department: str | None = None) -> Visit:
        visit = self._memory.pick_up(clerk_id, visit_id=visit_id, department=department)
        self._mark(visit)
        return visit

    def transfer(self, visit: Visit, department: str) -> None:
        self._memory.transfer(visit, department)
        self._mark(visit)

    def remove(self, visit: Visit) -> None:
        self._memory.remove(visit)
        self._mark(visit)

    def _mark(self, visit: Visit) -> None:
        self._hash.mark(visit.id)

    # -- Redis -------------------------------------------------------------------
    async def load(self) -> int:
        """Take every visit Redis holds into memory (a standby taking over); returns how many."""
        stored = await self._hash.read()
        offset = _mono_to_wall()
        for text in stored.values():
            visit = decode_visit(text, offset)
            if self._memory.get(visit.id) is None:
                self._memory.add(visit)
        return len(stored)

    async def flush(self, *, everything: bool = False) -> None:
        """Write the marked visits (or all, renewing the expiry) now. Raises Fenced when the lease is
        no longer ours, a redis error when Redis cannot be reached (the visits stay marked)."""
        await self._hash.flush(everything=everything)

    async def run(self) -> None:
        """Write changes as they come, and everything (renewing the expiry) every quarter of it."""
        await self._hash.run()

    def _memory_ids(self) -> list[str]:
        return [v.id for v in self._memory.all()]

    def _encode(self, visit_id: str) -> str | None:
        visit = self._memory.get(visit_id)
        return None if visit is None else encode_visit(visit, self._offset)
