"""Expected wait, derived from how long this department's recent calls took.

Model: the clerks of a department work in parallel, each finishing a call every
``median recent duration`` seconds. Free clerks take the first visits at
once; the visit at position p is reached after about ceil((p - free) / clerks)
such rounds. With no history yet, a configured prior
stands in until the first calls end.
"""
from __future__ import annotations

import math
import statistics
from collections import deque

WINDOW = 20  # recent calls per department; enough to smooth outliers, short enough to follow the day
ROUND_TO_S = 30  # a citizen reads "about 4 minutes", not "237 seconds"


class WaitEstimator:
    def __init__(self, default_handling_s: int):
        self.default_handling_s = default_handling_s
        self._durations: dict[str, deque[float]] = {}

    def seed(self, department: str, durations: list[float]) -> None:
        self._durations[department] = deque(durations[-WINDOW:], maxlen=WINDOW)

    def record(self, department: str, duration_s: float) -> None:
        self._durations.setdefault(department, deque(maxlen=WINDOW)).append(duration_s)

    def handling_s(self, department: str) -> float:
        recent = self._durations.get(department)
        return statistics.median(recent) if recent else float(self.default_handling_s)

    def expected_wait_s(self, department: str, position: int, clerks: int, free: int = 0) -> int:
        """``clerks`` work this department (at least one is assumed); ``free`` of them are available now."""
        if position <= free:
            return 0
        rounds = math.ceil((position - free) / max(1, clerks))
        seconds = rounds * self.handling_s(department)
        return int(math.ceil(seconds / ROUND_TO_S) * ROUND_TO_S)
