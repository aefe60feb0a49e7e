"""How long the kiosk waits before it connects to central again.

Every close is followed by a wait, also the close of a connection that opened
and was then dropped at once (a central that restarts, or a second unit with the
same token): without one, a fleet of kiosks hammers a central that is coming up.
The waits grow exponentially with random jitter, so kiosks that lost central at
the same moment do not come back in step, and shrink again only after a
connection stayed up for a while.
"""
from __future__ import annotations

import random
from collections.abc import Callable

START_S = 0.75     # first wait: 0.5 to 1 s with the jitter
# However long central was away, every kiosk is back within 10 s of its return; a hundred kiosks
# retrying every 7 to 10 s are no load for central (the protocol allows waits of up to 30 s).
MAX_S = 10.0
HEALTHY_S = 60.0   # a connection that lasted this long was a real one: start small again
JITTER = 1 / 3     # each wait is the nominal one times 1 +- JITTER


class Backoff:
    def __init__(self, start_s: float = START_S, max_s: float = MAX_S, healthy_s: float = HEALTHY_S,
                 uniform: Callable[[float, float], float] = random.uniform):
        self.start_s, self.max_s, self.healthy_s = start_s, max_s, healthy_s
        self._uniform = uniform
        self._nominal = start_s

    def next_delay(self) -> float:
        """The wait before the next attempt; each call doubles the following one, up to the maximum."""
        delay = min(self.max_s, self._nominal * self._uniform(1 - JITTER, 1 + JITTER))
        self._nominal = min(self.max_s, self._nominal * 2)
        return delay

    def connection_closed(self, lasted_s: float) -> None:
        """Tell how long the connection that just closed was up; only a healthy one resets the waits."""
        if lasted_s >= self.healthy_s:
            self._nominal = self.start_s
