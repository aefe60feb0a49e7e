"""The optional ramp: short phases at rising rates, to find the highest rate central sustains within the limit."""
from __future__ import annotations

import math

from bench._central import Server
from bench._central_latency.driver import Bench
from bench._central_latency.phases import Phase
from bench._central_latency.report import describe
from bench._common import note

RAMP_MAX_STEPS = 12
RAMP_MAX_VISITS_PER_STEP = 6000


def passes(phase: Phase, p99_limit_ms: float) -> bool:
    return (not phase.failures and len(phase.samples) == phase.planned and not phase.server_problems
            and phase.p("last_ms", 99) < p99_limit_ms and phase.achieved_rate >= 0.95 * phase.target_rate)


async def ramp(bench: Bench, args, server: Server) -> tuple[list[tuple[Phase, bool]], Phase | None]:
    steps: list[tuple[Phase, bool]] = []
    best: Phase | None = None
    passed, failed = 0.0, math.inf
    rate = args.rate
    for _ in range(RAMP_MAX_STEPS):
        visits = int(min(RAMP_MAX_VISITS_PER_STEP, max(args.ramp_step_visits, rate * args.ramp_step_s)))
        phase = await bench.run_phase(f"ramp {rate:.0f}/s", visits, rate, server)
        ok = passes(phase, args.ramp_p99_ms)
        steps.append((phase, ok))
        note(f"  {'pass' if ok else 'FAIL'}  {describe(phase)}")
        if ok:
            passed = rate
            if best is None or phase.achieved_rate > best.achieved_rate:
                best = phase
        else:
            failed = min(failed, rate)
        if failed == math.inf:
            if rate >= args.ramp_max_rate:
                break
            rate = min(args.ramp_max_rate, rate * 2)
        elif passed == 0.0:
            rate = failed / 2
            if rate < 1:
                break
        else:
            if failed / passed < 1.1:
                break
            rate = math.sqrt(passed * failed)
    return steps, best
