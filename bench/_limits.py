"""What central allows one kiosk (``central/live/limits.py``), and how a benchmark stays within it.

A real kiosk carries one citizen at a time: it asks for a visit at most ``VISIT_REQUESTS.capacity``
times in quick succession, then once per ``1 / VISIT_REQUESTS.per_second`` seconds (20 s), and
reconnects a few times in a row, then once a second (``KIOSK_CONNECTS``). Beyond that central answers
``rate_limited``. A benchmark that starts ``rate`` visits per second therefore spreads them over at
least ``rate × 20 s`` simulated kiosks (:func:`kiosks_for`, with ``KIOSK_MARGIN`` to spare for uneven
turns), so that it measures central serving many kiosks, not central refusing a flooding one.

Each benchmark that talks to central as kiosks describes its default plan as a :class:`KioskPlan`
(tests/bench/test_plans.py checks it against the limits), and a ``rate_limited`` answer ends a run
with :class:`RateLimited`, which names the limit, instead of being counted as a slow or failed visit.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from bench._common import BenchError
from central.live.limits import KIOSK_CONNECTS, VISIT_REQUESTS, Rate

KIOSK_MARGIN = 1.25   # more kiosks than rate × 20 s: the busiest kiosk still asks well below the limit


def every_s(rate: Rate) -> float:
    return 1 / rate.per_second


def describe(rate: Rate) -> str:
    return f"{rate.capacity:g} in quick succession, then one per {every_s(rate):g} s"


def kiosks_for(visits_per_s: float) -> int:
    """Simulated kiosks needed so that ``visits_per_s`` visit requests, taken in turns, stay within
    VISIT_REQUESTS forever: each kiosk asks once per ``KIOSK_MARGIN × 20 s``."""
    return math.ceil(visits_per_s * every_s(VISIT_REQUESTS) * KIOSK_MARGIN)


def limit_text(rate: Rate) -> str:
    name = "KIOSK_CONNECTS" if rate is KIOSK_CONNECTS else "VISIT_REQUESTS"
    return f"one kiosk may send {describe(rate)} ({name} in central/live/limits.py)"


class RateLimited(BenchError):
    """Central refused a kiosk's message as too frequent: the benchmark's plan is wrong, not central slow."""

    def __init__(self, what: str, detail: str = ""):
        limit = KIOSK_CONNECTS if "connect" in what else VISIT_REQUESTS
        super().__init__(
            f"central refused {what} with rate_limited{f' ({detail})' if detail else ''}: {limit_text(limit)}. "
            "The benchmark put more on one simulated kiosk than a real one would; spread the load over more "
            "kiosks (see bench/_limits.py) instead of raising the limit.")


@dataclass(frozen=True)
class KioskPlan:
    """The most that one simulated kiosk asks of central in a benchmark's plan."""
    visit_requests_per_s: float   # sustained over the run (0: a kiosk asks only its burst, once)
    visit_burst: int              # visit requests one kiosk sends before the sustained pace applies
    connects_per_s: float = 0.0   # reconnects, sustained
    connect_burst: int = 1        # connections opened before that pace applies

    def problems(self) -> list[str]:
        """What in this plan central would refuse; empty when it stays within the limits."""
        out = []
        for what, per_s, burst, limit, name in (
                ("visit requests", self.visit_requests_per_s, self.visit_burst, VISIT_REQUESTS, "VISIT_REQUESTS"),
                ("connections", self.connects_per_s, self.connect_burst, KIOSK_CONNECTS, "KIOSK_CONNECTS")):
            if per_s > limit.per_second or burst > limit.capacity:
                out.append(f"{what} of one kiosk: {burst} at once, then {per_s:g}/s; {name} allows "
                           f"{describe(limit)}")
        return out


class Allowance:
    """Each simulated kiosk's VISIT_REQUESTS bucket as central keeps it, computed here with the same
    arithmetic, so that a benchmark can wait until its kiosks may ask again (the ramp of central_latency)
    and stops before central would refuse. ``SLACK`` tokens more than needed cover the moments between
    a request leaving here and central counting it."""
    SLACK = 0.1

    def __init__(self, rate: Rate = VISIT_REQUESTS, clock: Callable[[], float] = time.monotonic):
        self.rate, self.clock = rate, clock
        self._state: dict[Hashable, tuple[float, float]] = {}   # key -> (tokens, at)

    def tokens(self, key: Hashable) -> float:
        now = self.clock()
        tokens, at = self._state.get(key, (self.rate.capacity, now))
        return min(self.rate.capacity, tokens + (now - at) * self.rate.per_second)

    def take(self, key: Hashable) -> bool:
        """Count one request of ``key``; False (and nothing counted) when central would refuse it."""
        tokens = self.tokens(key)
        if tokens < 1 + self.SLACK:
            return False
        self._state[key] = (tokens - 1, self.clock())
        return True

    def wait_s(self, keys, each: int) -> float:
        """Seconds until every one of ``keys`` may send ``each`` requests in a row."""
        if each + self.SLACK > self.rate.capacity:
            raise ValueError(f"no kiosk may send {each} requests in a row: {limit_text(self.rate)}")
        short = max((each + self.SLACK - self.tokens(k) for k in keys), default=0.0)
        return max(0.0, short / self.rate.per_second)
