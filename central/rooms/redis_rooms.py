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
overwrite what the new leader wrote. A refused write calls ``on_fenced``.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from central.rooms.visit import Visit, VisitState
from central.rooms.waiting_rooms import WaitingRooms
from protocol.errors import AmtsklingelError

if TYPE_CHECKING:  # redis is needed only where redis_url is configured
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

VISITS_KEY = "amtsklingel:rooms:visits"
BATCH = 500  # visits per script call: keeps one call well under Lua's argument limits and short for the server
RETRY_S = 0.5  # after a failed write: the marked visits are kept and written again

# KEYS[1] the visits hash, KEYS[2] (optional) the lease. ARGV: lease value, expiry ms, number of
# visits to set, then id/JSON pairs, then ids to delete. Returns 0 when the lease is not ours.
WRITE_SCRIPT = """
if #KEYS > 1 and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class Fenced(AmtsklingelError):
    """Redis refused a write: another central holds the lease now."""


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
        self._script = client.register_script(WRITE_SCRIPT)
        self.expiry_s = expiry_s
        self._lease = lease
        self._on_fenced = on_fenced
        self._marked: set[str] = set()
        self._wake = asyncio.Event()
        self._offset = _mono_to_wall()

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
        self._marked.add(visit.id)
        self._wake.set()

    # -- Redis -------------------------------------------------------------------
    async def load(self) -> int:
        """Take every visit Redis holds into memory (a standby taking over); returns how many."""
        stored = await self.client.hgetall(VISITS_KEY)
        offset = _mono_to_wall()
        for text in stored.values():
            visit = decode_visit(text, offset)
            if self._memory.get(visit.id) is None:
                self._memory.add(visit)
        return len(stored)

    async def flush(self, *, everything: bool = False) -> None:
        """Write the marked visits (or all, renewing the expiry) now. Raises Fenced when the lease is
        no longer ours, a redis error when Redis cannot be reached (the visits stay marked)."""
        marked = set(self._memory_ids()) | self._marked if everything else set(self._marked)
        self._marked.clear()
        try:
            await self._write(marked, renew=everything)
        except BaseException:
            self._marked |= marked
            raise

    def _memory_ids(self) -> list[str]:
        return [v.id for v in self._memory.all()]

    async def _write(self, ids: set[str], *, renew: bool) -> None:
        if not ids and not renew:
            return
        keys, value = [VISITS_KEY], ""
        if self._lease is not None:
            lease_key, value = self._lease()
            keys.append(lease_key)
        expiry_ms = int(self.expiry_s * 1000)
        kept = [v for i in ids if (v := self._memory.get(i)) is not None]
        gone = [i for i in ids if self._memory.get(i) is None]
        pipe = self.client.pipeline(transaction=False)
        calls = 0
        for start in range(0, max(len(kept), len(gone), 1), BATCH):
            sets = kept[start:start + BATCH]
            args: list[str | int] = [value, expiry_ms, len(sets)]
            for visit in sets:
                args += [visit.id, encode_visit(visit, self._offset)]
            args += gone[start:start + BATCH]
            await self._script(keys=keys, args=args, client=pipe)
            calls += 1
        results = await pipe.execute()
        if not all(results[:calls]):
            raise Fenced("another central holds the lease")

    async def run(self) -> None:
        """Write changes as they come, and everything (renewing the expiry) every quarter of it."""
        renew_every = self.expiry_s / 4
        next_renewal = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_renewal - time.monotonic()))
            self._wake.clear()
            everything = time.monotonic() >= next_renewal
            try:
                await self.flush(everything=everything)
            except Fenced:
                log.error("the waiting rooms were not written: another central leads now")
                self._on_fenced()
                return
            except Exception as exc:  # redis.ConnectionError, TimeoutError: Redis is away for now
                log.warning("the waiting rooms could not be written to Redis (%s); trying again", exc)
                await asyncio.sleep(RETRY_S)
                self._wake.set()
                continue
            if everything:
                next_renewal = time.monotonic() + renew_every
