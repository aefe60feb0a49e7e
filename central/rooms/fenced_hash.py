"""One Redis/Valkey hash that the leading central writes through from its memory, fenced by its lease.

The leader keeps its state in memory (the hub stays synchronous) and marks each entry it changes; a
background task writes the marked entries in one round trip (a Lua script per BATCH entries, so that a batch
lands whole, pipelined), and a standby taking over reads the whole hash back. An entry the memory no longer
holds is deleted from the hash. The hash expires after ``expiry_s`` (the resume grace), renewed with every
write and by a full rewrite every quarter of it: when no central has led that long, what it held is over.

Every write first checks that the lease still holds this central's value: a central that lost its lease can
never overwrite what the new leader wrote. A refused write raises :class:`Fenced` (and ends :meth:`run`,
calling ``on_fenced``). Used for the waiting rooms (redis_rooms.py) and the guest links
(redis_guest_links.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from central.cluster.keeper import redis_trouble
from protocol.errors import AmtsklingelError

if TYPE_CHECKING:  # redis is needed only where redis_url is configured
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

BATCH = 500  # entries per script call: keeps one call well under Lua's argument limits and short for the server
RETRY_S = 0.5  # after a failed write: the marked entries are kept and written again

# KEYS[1] the hash, KEYS[2] (optional) the lease. ARGV: lease value, expiry ms, number of entries to set,
# then field/value pairs, then fields to delete. Returns 0 when the lease is not ours.
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


class FencedHash:
    """The hash ``key``: ``encode(field)`` gives an entry's value from memory (None: it is gone there, delete
    it); ``fields()`` lists every entry memory holds (for the full rewrite). ``lease`` gives (key, current
    value) and fences the writes; None writes unfenced (one central, or tests). ``what`` names it in logs."""

    def __init__(self, client: aioredis.Redis, key: str, expiry_s: float, encode: Callable[[str], str | None],
                 fields: Callable[[], Iterable[str]], *, lease: Callable[[], tuple[str, str]] | None = None,
                 on_fenced: Callable[[], None] = lambda: None, what: str = "the waiting rooms") -> None:
        self.client, self.key, self.expiry_s = client, key, expiry_s
        self._script = client.register_script(WRITE_SCRIPT)
        self._encode, self._fields = encode, fields
        self._lease, self._on_fenced, self._what = lease, on_fenced, what
        self._marked: set[str] = set()
        self._wake = asyncio.Event()

    def mark(self, field: str) -> None:
        self._marked.add(field)
        self._wake.set()

    async def read(self) -> dict[bytes, bytes]:
        """Every entry the hash holds (a standby taking over)."""
        return await self.client.hgetall(self.key)

    async def flush(self, *, everything: bool = False) -> None:
        """Write the marked entries (or all, renewing the expiry) now. Raises Fenced when the lease is no
        longer ours, a redis error when Redis cannot be reached (the entries stay marked)."""
        marked = set(self._fields()) | self._marked if everything else set(self._marked)
        self._marked.clear()
        try:
            await self._write(marked, renew=everything)
        except BaseException:
            self._marked |= marked
            raise

    async def _write(self, fields: set[str], *, renew: bool) -> None:
        if not fields and not renew:
            return
        keys, value = [self.key], ""
        if self._lease is not None:
            lease_key, value = self._lease()
            keys.append(lease_key)
        expiry_ms = int(self.expiry_s * 1000)
        kept, gone = [], []
        for name in fields:
            encoded = self._encode(name)
            if encoded is None:
                gone.append(name)
            else:
                kept.append((name, encoded))
        pipe = self.client.pipeline(transaction=False)
        calls = 0
        for start in range(0, max(len(kept), len(gone), 1), BATCH):
            sets = kept[start:start + BATCH]
            args: list[str | int] = [value, expiry_ms, len(sets)]
            for name, encoded in sets:
                args += [name, encoded]
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
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when it is cancelled just as
            # the event was set, swallowing the cancel (central/cluster/leadership.py, stop_task).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_renewal - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()
            everything = time.monotonic() >= next_renewal
            try:
                await self.flush(everything=everything)
            except Fenced:
                log.error("%s were not written: another central leads now", self._what)
                self._on_fenced()
                return
            except Exception as exc:  # ConnectionError, TimeoutError, NOREPLICAS: Redis is away or refuses for now
                # Not a step-down of its own: the lease keeper ends the term if the lease cannot be renewed either.
                log.warning("%s could not be written to Redis (%s); trying again", self._what, redis_trouble(exc))
                await asyncio.sleep(RETRY_S)
                self._wake.set()
                continue
            if everything:
                next_renewal = time.monotonic() + renew_every
