"""The rooms of the contract test: each implementation of central/rooms/interface.py with a fixed
clock, and a check that what an implementation stores outside the process matches its memory."""
from __future__ import annotations

import contextlib
import time

from central.rooms import Visit, WaitingRooms
from central.rooms.redis_rooms import VISITS_KEY, RedisRooms

NOW = 1_800_000_000.0  # the rooms' clock (booked slots are compared with it)
GRACE_S = 60.0
IMPLEMENTATIONS = ["memory", "redis"]


def arrived(minutes_ago: float) -> dict:
    """A visit's arrival ``minutes_ago``, on both clocks a visit keeps."""
    return {"arrived_at": time.time() - 60 * minutes_ago, "arrived_mono": time.monotonic() - 60 * minutes_ago}


class InMemory(WaitingRooms):
    async def check_stored(self) -> None:
        """Nothing is stored outside the process."""


def _seen(visit: Visit) -> tuple:
    return (visit.id, visit.kiosk_id, visit.kiosk_location, visit.department, visit.language, visit.origin,
            visit.home_id, visit.slot_start, visit.booking, visit.arrived_at, visit.state, visit.clerk_id,
            visit.picked_up_at, visit.first_wait_s)


class InRedis(RedisRooms):
    async def check_stored(self) -> None:
        """A second central that loads what this one wrote sees the same rooms in the same order."""
        await self.flush()
        standby = RedisRooms(self.client, self.expiry_s, clock=self.clock)
        assert await standby.load() == len(self)
        assert sorted(map(_seen, standby.all()), key=str) == sorted(map(_seen, self.all()), key=str)
        for department in {v.department for v in self.all()} | {"buergerbuero", "standesamt"}:
            assert [v.id for v in standby.waiting(department)] == [v.id for v in self.waiting(department)]
        for visit in self.all():
            assert standby.position(standby.get(visit.id)) == self.position(visit)
            if visit.kiosk_id is not None:
                assert standby.of_kiosk(visit.kiosk_id).id == visit.id
        # Kept only for the resume grace; an empty room leaves no key behind.
        ttl_ms = await self.client.pttl(VISITS_KEY)
        assert (0 < ttl_ms <= GRACE_S * 1000) if len(self) else ttl_ms == -2


@contextlib.asynccontextmanager
async def open_rooms(implementation: str, request):
    if implementation == "memory":
        yield InMemory(clock=lambda: NOW)
        return
    import redis.asyncio as aioredis

    server = request.getfixturevalue("redis_server")  # a failure to start fails the test, never skips it
    client = aioredis.from_url(server.url)
    try:
        await client.flushdb()
        yield InRedis(client, GRACE_S, clock=lambda: NOW)
    finally:
        await client.aclose()
