"""The optional ramp: short phases at rising rates, to find the highest rate central sustains within the limit.

The kiosks are those of the paced phases (``--rate`` × 20 s of them), far fewer than a step at hundreds
of visits per second would need to stay below one request per kiosk per 20 s. So a step uses at most
``RAMP_REQUESTS_PER_KIOSK`` of each kiosk's quick succession (VISIT_REQUESTS), which caps its visits,
and before a step the ramp waits until every kiosk may send that many again: central never refuses a
request, and the rate of a step is still the rate at which central gets them.
"""
from __future__ import annotations

import asyncio
import math

from bench._central import Server
from bench._central_latency.driver import Bench
from bench._central_latency.phases import Phase
from bench._central_latency.report import describe
from bench._common import note
from bench._limits import VISIT_REQUESTS

RAMP_MAX_STEPS = 12
RAMP_MAX_VISITS_PER_STEP = 6000
RAMP_REQUESTS_PER_KIOSK = int(VISIT_REQUESTS.capacity) - 1   # one of the quick succession kept in reserve


def step_visits(args, rate: float, kiosks: int) -> int:
    wanted = min(RAMP_MAX_VISITS_PER_STEP, max(args.ramp_step_visits, rate * args.ramp_step_s))
    return int(min(wanted, RAMP_REQUESTS_PER_KIOSK * kiosks))


def passes(phase: Phase, p99_limit_ms: float) -> bool:
    return (not phase.failures and len(phase.samples) == phase.planned and not phase.server_problems
            and phase.p("last_ms", 99) < p99_limit_ms and phase.achieved_rate >= 0.95 * phase.target_rate)


async def ramp(bench: Bench, args, server: Server) -> tuple[list[tuple[Phase, bool]], Phase | None]:
    steps: list[tuple[Phase, bool]] = []
    best: Phase | None = None
    passed, failed = 0.0, math.inf
    rate = args.rate
    for _ in range(RAMP_MAX_STEPS):
        visits = step_visits(args, rate, len(bench.kiosks))
        if (wait := bench.allowance.wait_s(bench.kiosks, math.ceil(visits / len(bench.kiosks)))) > 0:
            note(f"  waiting {wait:.0f} s until each kiosk may ask for visits again (VISIT_REQUESTS)")
            await asyncio.sleep(wait)
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
