"""What one phase of visits measured: a sample per visit, failures, CPU and loop lag."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from bench._common import percentile


class VisitFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Sample:
    scheduled: float
    sent: float
    queued_ms: float   # kiosk: visit.request -> visit.queued
    first_ms: float    # first console has queue.joined
    last_ms: float     # every console has queue.joined


@dataclass
class Phase:
    label: str
    target_rate: float
    planned: int
    samples: list[Sample] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    loop_lag_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_total_s: float = 0.0  # including what central still did after the last visit (settling)
    server_problems: int = 0  # WARNING/ERROR lines central logged during the phase (and its settling)
    settle_s: float = 0.0     # how long central kept working after the last visit

    def sorted(self, attr: str) -> list[float]:
        return sorted(getattr(s, attr) for s in self.samples)

    @property
    def achieved_rate(self) -> float:
        sent = sorted(s.sent for s in self.samples)
        if len(sent) < 2 or sent[-1] <= sent[0]:
            return math.nan
        return (len(sent) - 1) / (sent[-1] - sent[0])

    @property
    def start_lag_ms(self) -> list[float]:
        return sorted((s.sent - s.scheduled) * 1000 for s in self.samples)

    def p(self, attr: str, q: float) -> float:
        return percentile(self.sorted(attr), q)
