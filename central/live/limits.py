"""Token buckets: how often one kiosk or one call may do something, in this process.

A bucket holds up to ``capacity`` tokens and gains ``per_second`` of them back;
each action takes one. So a burst of ``capacity`` actions is fine, and after
that one per ``1 / per_second`` seconds. A refused action takes nothing, so a
sender that waits the hinted time always gets through.

The limits below are per central process: a kiosk holds one connection to one
process, so that is where its floods arrive.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    capacity: float
    per_second: float


# A citizen requests a visit, may pick the wrong department, cancel and choose again:
# three in quick succession, then one every 20 s (three a minute) is more than any
# person needs, and cuts a request/cancel flood to a handful of arrivals a minute.
VISIT_REQUESTS = Rate(capacity=3, per_second=1 / 20)
# A citizen shows their booking's QR code or types its code, maybe mistyping it twice: five in a row,
# then one every 10 s. Guessing codes (40 random bits) at that pace finds none in centuries.
BOOKING_LOOKUPS = Rate(capacity=5, per_second=1 / 10)
# A kiosk (re)connects after a lost link with a growing back-off; faster than once a
# second after a short burst is a loop (two units with one token: a cloned SD card).
KIOSK_CONNECTS = Rate(capacity=3, per_second=1.0)
# Signaling of one call, per side: an offer or answer per (re)negotiation, and a few
# dozen candidates per gathering. Far above that is a flood aimed at the other side.
CALL_SDP = Rate(capacity=10, per_second=1 / 6)
CALL_CANDIDATES = Rate(capacity=200, per_second=5.0)
# A clerk invites an interpreter or colleague now and then, and may revoke a link and make another;
# a handful in a row, then one every 20 s, is plenty (a call has at most two guests anyway).
GUEST_INVITES = Rate(capacity=5, per_second=1 / 20)
# The public guest socket, per client address: a guest opens a link once, maybe again after a reload
# (which needs a new link). Each connection may try one link secret, so this also bounds guessing
# (hopeless anyway at 192 bits) and what one address can make central hold.
GUEST_CONNECTS = Rate(capacity=10, per_second=1 / 6)
# A kiosk's reports for the fleet page (health, self-test, device faults, ...), per kind: health comes
# every 30 s and at most every 5 s after changes; a few in a row (a reconnect, a self-test) are fine,
# far more is a loop or a flood, refused (the kiosk stays connected) before it costs central anything.
FLEET_REPORTS = Rate(capacity=5, per_second=1 / 5)
# A kiosk's update reports: on every change of state, and while downloading every 5 % or 30 s. On a fast
# line a whole download's 5 % steps and its states come within seconds, so sixty in a row are fine, then
# two a second. None is written one by one (central/updates/persist.py batches them).
UPDATE_REPORTS = Rate(capacity=60, per_second=2.0)


class Buckets:
    """One bucket per key, created full. A full bucket is the same as none, so those are forgotten.

    Forgetting looks at every bucket, so it runs only when their number has doubled since the last
    time (and is above ``prune_above``): with thousands of kiosks all refilling at once, looking at
    every bucket on every request was the largest cost of a visit request (docs/benchmarks.md,
    "Central at scale"). Memory stays within twice the buckets that are not full.
    """

    def __init__(self, rate: Rate, *, clock: Callable[[], float] = time.monotonic, prune_above: int = 1000):
        self.rate = rate
        self.clock = clock
        self.prune_above = prune_above
        self._prune_at = prune_above  # forget full buckets once there are more than this many
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: Hashable) -> float:
        """Take a token for ``key``: 0.0 if granted, else the seconds until one is there."""
        now = self.clock()
        tokens = self._tokens(key, now)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self._prune_at:
                self._prune(now)
            return 0.0
        return (1 - tokens) / self.rate.per_second

    def _tokens(self, key: Hashable, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.rate.capacity, now))
        return min(self.rate.capacity, tokens + (now - at) * self.rate.per_second)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._tokens(k, now) >= self.rate.capacity]:
            del self._buckets[key]
        self._prune_at = max(self.prune_above, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_s(wait: float) -> int:
    """Whole seconds to tell a sender (HTTP Retry-After, the error detail): never 0."""
    return max(1, math.ceil(wait))

# -- browsers at home (/ws/visit): public, no account, so limited by the client's address ------------------
# An address is one IPv4 address or one IPv6 /64 (central/web/client.py): a household, or a whole office or
# a carrier's NAT; so the limits leave room for a few people at once, not for a flood.
# Connections: ten in a row (reloads, a flaky phone network), then one every 6 s.
HOME_CONNECTS = Rate(capacity=10, per_second=1 / 6)
HOME_OPEN_PER_ADDRESS = 5  # connections open at the same time from one address
# Visit requests: as at a kiosk, three in a row, then one every 20 s, per address (whichever connection).
HOME_VISIT_REQUESTS = Rate(capacity=3, per_second=1 / 20)
# Every message of one connection: a call's set-up sends a few dozen (candidates) at once; far more is a flood.
HOME_MESSAGES = Rate(capacity=120, per_second=10.0)
