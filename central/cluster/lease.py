"""The leader's lease in Redis/Valkey: at most one central serves at a time.

A central becomes leader with ``SET key value NX PX ttl`` (in a script, together with raising
the epoch, so each takeover has a number of its own) and stays leader only while it renews
the key well inside its ttl. Its own deadline runs from the moment it *sent* a successful
acquire or renewal: the key in Redis lives at least that long, so the central gives up
(:attr:`Lease.held` turns False) no later than Redis could hand the key to another one.

The leader renews from a thread of its own (central/cluster/keeper.py), so a busy event loop does not
end its term; acquiring and handing back happen on the event loop.
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

LEASE_KEY = "amtsklingel:leader"
EPOCH_KEY = "amtsklingel:leader:epoch"
TTL_S = 3.0  # a killed leader is replaced after at most this (plus the standby's poll); see 0008
RENEW_EVERY_S = TTL_S / 4  # three renewals may fail or come late before the lease is lost
# The leader stops serving this long before its lease could expire in Redis: room for the
# event loop being late to notice, and for Redis's own expiry being a little early.
MARGIN_S = 0.5

ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
local value = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
return value
"""
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class Lease:
    """This central's claim to lead. ``name`` tells the centrals apart in the value (and in logs)."""

    def __init__(self, client: aioredis.Redis, name: str | None = None, *, ttl_s: float = TTL_S,
                 key: str = LEASE_KEY, epoch_key: str = EPOCH_KEY) -> None:
        self.name = name or secrets.token_hex(4)
        self.ttl_s, self.key, self.epoch_key = ttl_s, key, epoch_key
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self.value: str | None = None  # "epoch:name" while held
        self._deadline = 0.0  # monotonic: stop leading before this

    @property
    def epoch(self) -> int | None:
        value = self.value  # read once: the keeper thread may drop it meanwhile
        return int(value.split(":", 1)[0]) if value else None

    @property
    def held(self) -> bool:
        return self.value is not None and time.monotonic() < self._deadline

    def seconds_left(self) -> float:
        return self._deadline - time.monotonic()

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this central leads now."""
        sent = time.monotonic()
        value = await self._acquire(keys=[self.key, self.epoch_key], args=[self.name, int(self.ttl_s * 1000)])
        if not value:
            return False
        self.value = value.decode() if isinstance(value, bytes) else str(value)
        self._deadline = sent + self.ttl_s - MARGIN_S
        log.info("this central leads now (epoch %d)", self.epoch)
        return True

    async def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (expired and taken, or deleted)."""
        if self.value is None:
            return False
        sent = time.monotonic()
        value = self.value
        if await self._renew(keys=[self.key], args=[value, int(self.ttl_s * 1000)]) != 1:
            self.value = None
            return False
        self.renewed(value, sent)
        return True

    def renewed(self, value: str, sent: float) -> None:
        """A renewal of ``value`` sent at ``sent`` (monotonic) succeeded: the deadline moves on. A renewal
        that comes back after the lease was dropped here does not bring it back."""
        if self.value == value:
            self._deadline = sent + self.ttl_s - MARGIN_S

    def drop(self) -> None:
        """Stop counting as leader at once (without asking Redis)."""
        self.value = None

    async def release(self) -> None:
        """Hand the lease back (a clean stop): a standby can take over at once instead of after the ttl."""
        value, self.value = self.value, None
        if value is not None:
            await self._release(keys=[self.key], args=[value])
