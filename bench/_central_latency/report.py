"""The summary of a run, printed for a person and as one JSON line per figure."""
from __future__ import annotations

import math
import os

from bench._central import DEPARTMENT
from bench._central_latency.phases import Phase
from bench._common import emit, percentile


def describe(phase: Phase) -> str:
    lag = sorted(phase.loop_lag_ms)
    return (f"{phase.label}: {len(phase.samples)}/{phase.planned} visits, target {phase.target_rate:.0f}/s, "
            f"achieved {phase.achieved_rate:.1f}/s, last console p50 {phase.p('last_ms', 50):.2f} ms "
            f"p99 {phase.p('last_ms', 99):.2f} ms max {phase.p('last_ms', 100):.2f} ms, "
            f"server CPU {100 * phase.server_cpu_s / phase.wall_s:.0f} %, "
            f"client CPU {100 * phase.client_cpu_s / phase.wall_s:.0f} %, "
            f"client loop lag p99 {percentile(lag, 99):.2f} ms, failures {sum(phase.failures.values())}, "
            f"central log warnings/errors {phase.server_problems}, busy {phase.settle_s:.1f} s after")


def report(args, phase: Phase, rss_mb: float, hwm_mb: float, ramp: list[tuple[Phase, bool]],
           sustained: Phase | None, problems: list[str], n_consoles: int, n_kiosks: int) -> None:
    n = len(phase.samples)
    per_k = 1000 / n if n else math.nan
    lag = sorted(phase.loop_lag_ms)
    start_lag = phase.start_lag_ms
    first = {q: phase.p("first_ms", q) for q in (50, 99, 100)}
    last = {q: phase.p("last_ms", q) for q in (50, 99, 100)}
    queued = {q: phase.p("queued_ms", q) for q in (50, 99)}
    cores = os.cpu_count()
    print()
    print(f"central: visit request -> clerk console shows it  ({n_consoles} consoles of {DEPARTMENT}, "
          f"{n_kiosks} kiosks, one client process, central in its own process; {cores} CPUs)")
    print(f"  visits measured        {n} of {phase.planned} (failed {sum(phase.failures.values())}"
          f"{': ' + str(dict(phase.failures)) if phase.failures else ''})")
    print(f"  rate                   target {phase.target_rate:.0f}/s, achieved {phase.achieved_rate:.1f}/s "
          f"over {phase.wall_s:.1f} s; start lag p99 {percentile(start_lag, 99):.2f} ms, "
          f"max {percentile(start_lag, 100):.2f} ms")
    print(f"  to first console       p50 {first[50]:7.2f} ms   p99 {first[99]:7.2f} ms   max {first[100]:7.2f} ms")
    print(f"  to last console (all)  p50 {last[50]:7.2f} ms   p99 {last[99]:7.2f} ms   max {last[100]:7.2f} ms")
    print(f"  kiosk visit.queued     p50 {queued[50]:7.2f} ms   p99 {queued[99]:7.2f} ms")
    print(f"  server CPU             {phase.server_cpu_total_s:.2f} s = {phase.server_cpu_total_s * per_k:.3f} s per 1000 "
          f"visits ({100 * phase.server_cpu_s / phase.wall_s:.0f} % of one core during the phase; "
          f"busy {phase.settle_s:.1f} s after it)")
    print(f"  client CPU             {phase.client_cpu_s:.2f} s = {phase.client_cpu_s * per_k:.3f} s per 1000 visits "
          f"({100 * phase.client_cpu_s / phase.wall_s:.0f} % of one core); loop lag p50 "
          f"{percentile(lag, 50):.2f} ms p99 {percentile(lag, 99):.2f} ms max {percentile(lag, 100):.2f} ms")
    print(f"  server memory          VmRSS {rss_mb:.1f} MB, VmHWM {hwm_mb:.1f} MB")
    print(f"  central log            {phase.server_problems} warning/error lines in this phase, "
          f"{len([p for p in problems if not p.startswith('Traceback')])} in the whole run")
    for line in problems[:5]:
        print(f"                         {line[:150]}")
    if ramp:
        print(f"  ramp (pass = no failed visit, no central warning/error, last-console p99 < {args.ramp_p99_ms:g} ms, "
              ">= 95 % of target rate):")
        for step, ok in ramp:
            print(f"    {'pass' if ok else 'FAIL'}  {describe(step)}")
        if sustained is not None:
            print(f"  max sustained          {sustained.achieved_rate:.0f} joins/s "
                  f"({sustained.achieved_rate * n_consoles:.0f} console deliveries/s)")
        else:
            print("  max sustained          not found (even the lowest step failed)")
    print()
    emit("central.visits", n, "count")
    emit("central.visit_failures", sum(phase.failures.values()), "count")
    emit("central.visit_rate_achieved", phase.achieved_rate, "visits/s")
    for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
        emit(f"central.visit_to_first_console_ms.{label}", first[q], "ms")
    for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
        emit(f"central.visit_to_console_ms.{label}", last[q], "ms")  # the last console: every console shows it
    emit("central.visit_to_queued_ms.p50", queued[50], "ms")
    emit("central.visit_to_queued_ms.p99", queued[99], "ms")
    emit("central.server_cpu_s_per_1000_visits", phase.server_cpu_total_s * per_k, "s")
    emit("central.client_cpu_s_per_1000_visits", phase.client_cpu_s * per_k, "s")
    emit("central.server_cpu_pct", 100 * phase.server_cpu_s / phase.wall_s, "%")
    emit("central.client_cpu_pct", 100 * phase.client_cpu_s / phase.wall_s, "%")
    emit("central.client_loop_lag_ms.p99", percentile(lag, 99), "ms")
    emit("central.server_rss_mb", rss_mb, "MB")
    emit("central.server_rss_peak_mb", hwm_mb, "MB")
    if ramp:
        emit("central.max_sustained_joins_per_s", sustained.achieved_rate if sustained else 0.0, "joins/s")
