"""One step of the scale benchmark: visits at one rate, and what it measured."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from bench._common import percentile

P99_LIMIT_MS = 100.0
MIN_ACHIEVED = 0.95    # of the step's target rate


@dataclass
class Step:
    target_rate: float
    planned: int
    latencies_ms: list[float] = field(default_factory=list)   # visit request -> the last console of its department
    queued_ms: list[float] = field(default_factory=list)      # visit request -> visit.queued at the kiosk
    failures: Counter = field(default_factory=Counter)
    sent_s: float = 0.0
    waited_s: float = 0.0
    start_lag_p99_ms: float = 0.0
    console_frames: int = 0
    central_cpu_s: float = 0.0
    kiosks_cpu_s: float = 0.0
    consoles_cpu_s: float = 0.0
    central_wait_s: float = math.nan   # central's main thread runnable but without a CPU (bench._common.proc_wait_s)
    kiosks_lag: dict = field(default_factory=dict)     # the generators' event-loop lag (bench._scale.lag)
    consoles_lag: dict = field(default_factory=dict)
    others_cpu_s: dict[str, float] = field(default_factory=dict)   # the servers between (HAProxy, Redis, standby)
    wall_s: float = 0.0

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies_ms) / self.sent_s if self.sent_s > 0 else 0.0

    def p(self, q: float, values: str = "latencies_ms") -> float:
        return percentile(sorted(getattr(self, values)), q)

    @property
    def central_cpu_s_per_1000(self) -> float:
        started = len(self.latencies_ms) + sum(self.failures.values())
        return 1000 * self.central_cpu_s / started if started else float("nan")

    @property
    def central_core_pct_needed(self) -> float:
        """The share of one core central's CPU per visit comes to at the achieved rate. The step's own CPU
        figures are spread over its wall time, which includes the last visits' hold and the collection after
        them; this is what central needs while visits arrive."""
        return self.central_cpu_s_per_1000 * self.achieved_rate / 10

    @property
    def passed(self) -> bool:
        return (not self.failures and len(self.latencies_ms) == self.planned and self.p(99) <= P99_LIMIT_MS
                and self.achieved_rate >= MIN_ACHIEVED * self.target_rate)

    def add(self, kiosks: dict, consoles: dict, expected: dict[str, int]) -> None:
        """Match the kiosks' visits (id, department, sent, queued) with the consoles' arrivals."""
        arrivals = consoles["arrivals"]
        for visit_id, department, sent, queued in kiosks["visits"]:
            self.queued_ms.append((queued - sent) * 1000)
            seen = arrivals.get(visit_id)
            if seen is None or seen[0] < expected[department]:
                self.failures[f"queue.joined at {seen[0] if seen else 0} of {expected[department]} consoles"] += 1
            else:
                self.latencies_ms.append((seen[2] - sent) * 1000)
        self.failures.update(kiosks["failures"])
        if kiosks["not_started"]:
            self.failures["no kiosk free to start a visit"] += kiosks["not_started"]
        if consoles["error_count"]:
            self.failures[f"error frames to consoles: {consoles['errors'][0][:80]}"] += consoles["error_count"]
        self.sent_s, self.waited_s = kiosks["sent_s"], kiosks["waited_s"]
        self.start_lag_p99_ms = kiosks["start_lag_p99_ms"]
        self.console_frames = consoles["frames"]
        self.kiosks_lag, self.consoles_lag = kiosks.get("lag", {}), consoles.get("lag", {})

    def describe(self) -> str:
        wall = self.wall_s or float("nan")
        failures = sum(self.failures.values())
        others = "".join(f", {who} {100 * cpu / wall:.0f} %" for who, cpu in self.others_cpu_s.items())
        return (f"{'pass' if self.passed else 'FAIL'}  target {self.target_rate:.0f}/s, achieved "
                f"{self.achieved_rate:.0f}/s, {len(self.latencies_ms)}/{self.planned} visits, visit -> console "
                f"p50 {self.p(50):.1f} ms p99 {self.p(99):.1f} ms max {self.p(100):.1f} ms, visit.queued p99 "
                f"{self.p(99, 'queued_ms'):.1f} ms, start lag p99 {self.start_lag_p99_ms:.1f} ms; CPU central "
                f"{self.central_cpu_s_per_1000:.2f} s per 1,000 visits, {100 * self.central_cpu_s / wall:.0f} %, kiosks {100 * self.kiosks_cpu_s / wall:.0f} %, consoles "
                f"{100 * self.consoles_cpu_s / wall:.0f} %{others} of a core; central needs "
                f"{self.central_core_pct_needed:.0f} % of a core at this rate and waited {self.central_wait_s:.2f} s "
                f"for a CPU; loop lag p99 kiosks {self.kiosks_lag.get('p99_ms', math.nan):.0f} ms, consoles "
                f"{self.consoles_lag.get('p99_ms', math.nan):.0f} ms; {self.console_frames} console frames"
                + (f"; failures {failures}: {dict(self.failures.most_common(3))}" if failures else ""))
