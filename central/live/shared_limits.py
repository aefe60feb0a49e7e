"""Per-address limits that hold across leaders: the same token bucket as central/live/limits.py, kept in
Valkey/Redis when central runs with ``redis_url`` (docs/decisions/0008-several-centrals.md).

Only the public, per-address anti-abuse limits use this (bookings, lookups of unknown codes, and the
handshakes of the public sockets /ws/visit and /ws/guest): a change of leader must not hand an address a
fresh burst. Both kinds answer ``await take(address)`` with 0.0 when the
action is allowed, else the seconds until it would be.

In Valkey, one bucket is a small hash (tokens, last time) under ``amtsklingel:limits:<name>:<HMAC of the
address>``: no address in clear (docs/decisions/0003-live-state-and-privacy.md), and it expires once it
would be full again, so Valkey holds nothing for an address that has stopped.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Protocol

from redis.exceptions import RedisError

from central.live.limits import Buckets, Rate

log = logging.getLogger(__name__)

KEY_PREFIX = "amtsklingel:limits:"

# The bucket of central/live/limits.py in one step, atomic across centrals. ARGV: capacity, per second, now
# (seconds; negative: Valkey's own TIME, one clock for every central). Returns the wait as a string (a Lua
# number would come back as a truncated integer).
_TAKE = """
local capacity, per_second, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens, at = capacity, now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_second)
if tokens < 1 then
  return tostring((1 - tokens) / per_second)
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / per_second * 1000)))
return '0'
"""


class AddressLimit(Protocol):
    async def take(self, address: str) -> float:
        """Take a token for ``address``: 0.0 if granted, else the seconds until one is there."""
        ...


class LocalLimit:
    """One central alone (no redis_url): the buckets in this process's memory."""

    def __init__(self, rate: Rate, *, clock: Callable[[], float] | None = None) -> None:
        self.buckets = Buckets(rate) if clock is None else Buckets(rate, clock=clock)

    async def take(self, address: str) -> float:
        return self.buckets.take(address)


class ValkeyLimit:
    """Several centrals: the bucket in Valkey, so whichever central leads sees what the others counted.

    ``secret`` is shared by every central (the database's settings), so they all find the same key for an
    address. ``clock`` is for tests; without it Valkey's TIME is the one clock.
    """

    def __init__(self, client, name: str, rate: Rate, secret: str, *,  # noqa: ANN001 - redis.asyncio.Redis
                 clock: Callable[[], float] | None = None) -> None:
        self.client, self.name, self.rate, self.clock = client, name, rate, clock
        self._secret = secret.encode()

    def key(self, address: str) -> str:
        digest = hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()
        return f"{KEY_PREFIX}{self.name}:{digest}"

    async def take(self, address: str) -> float:
        now = self.clock() if self.clock is not None else -1
        try:
            wait = await self.client.eval(_TAKE, 1, self.key(address), self.rate.capacity, self.rate.per_second,
                                          now)
        except (RedisError, OSError, TimeoutError) as err:
            # Fail open: a limit against floods must not take the booking page down with it when Valkey
            # blinks. The leader notices a lost Valkey through its lease anyway (central/cluster/lease.py).
            log.warning("limits: %s not checked, Valkey/Redis did not answer (%s); allowed", self.name,
                        type(err).__name__)
            return 0.0
        return float(wait)
