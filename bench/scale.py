"""Thousands of idle kiosks and hundreds of consoles on one central; visits at rising rates until the p99 passes 100 ms.

What is measured
----------------
Central runs as its own process (``python -m central serve``, a temporary SQLite database, 127.0.0.1) with
a database the benchmark seeds itself (``bench/_scale/seed.py``): ``--scale-departments`` departments open
at every hour, ``--scale-kiosks`` kiosks spread over them (kiosk i asks for department i mod count), and
``--scale-consoles`` clerks serving 1-3 departments each, every one with a session written into the
database (no argon2 logins). Defaults: 5,000 kiosks, 500 consoles, 50 departments.

The load generator is two processes of raw aiohttp WebSocket clients with pre-encoded frames: one holds
every kiosk (``_scale/kiosks.py``), one every console (``_scale/consoles.py``); this process only
orchestrates. All connect, stay idle (central's heartbeat keeps them alive), and central's VmRSS before and
after gives the memory per socket. Then steps of ``--scale-step-s`` seconds at the rates of
``--scale-rates``: visits start open-loop at the step's rate on kiosks taken in turns, each cancelled
``--scale-hold-s`` after its ``visit.queued``. A visit's latency runs from just before its
``visit.request`` to the moment the last console serving its department has ``queue.joined`` (both
processes take ``time.perf_counter()``, CLOCK_MONOTONIC, one clock for the machine). A step passes with
every visit seen by all its consoles, no failure, p99 <= 100 ms and >= 95 % of its rate achieved; the
steps stop at the first that fails (unless ``--scale-all-steps``), or after ``--scale-max-s``.

Kiosks ask only as often as central allows one kiosk (``bench/_limits.py``): a step first waits until
enough kiosks may ask again, so no request is refused (a ``rate_limited`` answer stops the run).

Figures (JSON lines): ``scale_joins_per_s_p99_100ms`` (the highest achieved rate of a passing step; the
machine's two cores run central and the load generator), ``scale_rss_mb`` (central with every socket
connected, idle), ``scale_kb_per_socket``, central's CPU per 1,000 visits in the best passing step, and the
hub's alone (``scale_hub_cpu_s_per_1000_visits``: ``_scale/hub_alone.py``, no sockets, hardly moved by the
machine's load).

``./build.sh bench --only scale2`` (bench/scale2.py) runs the same through HAProxy to two centrals with
PostgreSQL and Redis; its figures have the prefix ``scale2_``.

Needs one file descriptor per socket in central and in the kiosks' process (two in HAProxy's, for scale2): the benchmark raises its soft
RLIMIT_NOFILE (inherited by both) and stops with a message if the hard limit is too low.
"""
from __future__ import annotations

import asyncio
import math
import os
import resource
import sys
from pathlib import Path
from time import perf_counter

from bench._common import BenchError, emit, note, proc_cpu_s, proc_status_mb, proc_wait_s, run_in_tmp
from bench._limits import VISIT_REQUESTS, KioskPlan
from bench._scale import STAGE_TIMEOUT_S, consoles, kiosks
from bench._scale.fronts import OneCentral, TwoCentrals
from bench._scale.hub_alone import hub_cpu_s_per_1000_visits
from bench._scale.seed import seed
from bench._scale.steps import P99_LIMIT_MS, Step
from bench._scale.worker import Worker

NAME = "scale"
FDS_MARGIN = 512          # files, pipes and the database besides the sockets
CONNECT_TIMEOUT_S = 600.0  # all kiosks or all consoles connected
IDLE_S = 5.0               # connected and idle: central's CPU for idle sockets, then its memory


def raise_fd_limit(sockets: int) -> None:
    """Enough file descriptors for ``sockets`` connections in one process (central, the kiosks' process)."""
    needed = sockets + FDS_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchError(f"{sockets} connections need {needed} open files per process, but the hard limit "
                         f"(RLIMIT_NOFILE) is {hard}: raise it (e.g. `ulimit -Hn {needed}` as root, or LimitNOFILE= "
                         f"in a systemd unit), or run with fewer --scale-kiosks")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def rates(args) -> list[float]:
    try:
        out = [float(r) for r in args.scale_rates.split(",")]
    except ValueError:
        raise BenchError(f"--scale-rates takes rates separated by commas, not {args.scale_rates!r}") from None
    if not out or any(r <= 0 for r in out):
        raise BenchError("--scale-rates: every rate must be positive")
    return out


async def _run(args, tmp: Path, name: str = NAME) -> int:
    """The bench on one central (``name`` "scale") or two behind HAProxy ("scale2", bench/scale2.py); the
    figures are named with ``name`` as their prefix."""
    sockets = args.scale_kiosks + args.scale_consoles
    raise_fd_limit(sockets if name == NAME else 2 * sockets)   # HAProxy holds both ends of every socket
    plan = rates(args)
    hub_cpu = None
    if name == NAME:   # the same hub as scale2's: measured once, by the one-instance bench
        hub_cpu = hub_cpu_s_per_1000_visits(args.scale_departments, args.scale_kiosks, args.scale_consoles)
        note(f"the hub alone (no sockets): {hub_cpu:.3f} s of CPU per 1,000 visits")
    front = OneCentral(tmp) if name == NAME else TwoCentrals(tmp, sockets)
    workers: list[Worker] = []
    try:
        database_url = await front.prepare()
        note(f"seeding {args.scale_departments} departments, {args.scale_kiosks} kiosks, {args.scale_consoles} clerks")
        seeded = await seed(database_url, departments=args.scale_departments, kiosks=args.scale_kiosks,
                            clerks=args.scale_consoles)
        expected = {d: seeded.consoles_of(d) for d in seeded.departments}
        if not all(expected.values()):
            raise BenchError("every department needs a console: use at least as many --scale-consoles as departments")
        await front.start()
        await asyncio.sleep(1.0)
        rss_before = proc_status_mb(front.pid, "VmRSS")
        console_side = Worker("consoles", consoles.main, front.url, [token for token, _ in seeded.consoles])
        kiosk_side = Worker("kiosks", kiosks.main, front.url, seeded.kiosks, args.scale_hold_s)
        workers += [console_side, kiosk_side]
        got = await console_side.ask(CONNECT_TIMEOUT_S, cmd="connect")
        note(f"connected {got['consoles']} consoles in {got['seconds']:.1f} s")
        got = await kiosk_side.ask(CONNECT_TIMEOUT_S, cmd="connect")
        note(f"connected {got['kiosks']} kiosks in {got['seconds']:.1f} s")
        cpu_idle = proc_cpu_s(front.pid)
        await asyncio.sleep(IDLE_S)
        idle_pct = 100 * (proc_cpu_s(front.pid) - cpu_idle) / IDLE_S   # heartbeats of the idle sockets
        rss_idle = proc_status_mb(front.pid, "VmRSS")
        kb_per_socket = (rss_idle - rss_before) * 1024 / sockets
        note(f"central VmRSS {rss_before:.1f} MB before the clients, {rss_idle:.1f} MB with {sockets} sockets "
             f"({kb_per_socket:.1f} KB per socket); {idle_pct:.1f} % of a core while they are idle")
        steps: list[Step] = []
        started = perf_counter()
        for rate in plan:
            if perf_counter() - started > args.scale_max_s:
                note(f"stopped after {args.scale_max_s:g} s (--scale-max-s) before the {rate:g}/s step")
                break
            planned = max(1, round(rate * args.scale_step_s))
            try:
                step = await run_step(front, console_side, kiosk_side, rate, planned, expected)
            except BenchError:
                if (gone := front.gone()) is None:
                    raise
                step = Step(rate, planned)   # its clients were cut off with it: a failed step, the last
                step.failures[gone] += 1
                steps.append(step)
                note(f"  {step.describe()}")
                break
            steps.append(step)
            note(f"  {step.describe()}")
            if not step.passed and not args.scale_all_steps:
                break
        rss_peak = proc_status_mb(front.pid, "VmHWM") if front.gone() is None else float("nan")
        report(args, name, front.description, steps, rss_idle, rss_peak, kb_per_socket, sockets, idle_pct, hub_cpu,
               front.log_problems())
        if hasattr(front, "longest_stall_s"):  # several centrals: did the leader keep its lease, and how near was it
            stall = front.longest_stall_s()
            print(f"  leader                 {'kept its lease' if front.gone() is None else front.gone()}; "
                  f"its event loop's longest stall {stall:.1f} s (logged from 1 s)")
            emit(f"{name}_leader_longest_stall_s", stall, "s")
        return 0 if steps and steps[0].passed else 1
    finally:
        for worker in workers:
            worker.stop()
        await front.stop()


async def run_step(front, console_side: Worker, kiosk_side: Worker, rate: float, visits: int,
                   expected: dict[str, int]) -> Step:
    step = Step(rate, visits)
    pids = (front.pid, kiosk_side.pid, console_side.pid)
    others = front.extra_pids
    await console_side.ask(STAGE_TIMEOUT_S, cmd="mark")
    cpu0, wall0, wait0 = [proc_cpu_s(p) for p in pids], perf_counter(), proc_wait_s(front.pid)
    others0 = {who: proc_cpu_s(pid) for who, pid in others.items()}
    sent = await kiosk_side.ask(visits / rate + 300.0, cmd="step", rate=rate, visits=visits)
    if sent["refused"]:
        raise BenchError(sent["refused"])
    await asyncio.sleep(1.0)   # the last visits' queue.joined may still be on their way to slow consoles
    seen = await console_side.ask(STAGE_TIMEOUT_S, cmd="collect")
    step.wall_s = perf_counter() - wall0 - sent["waited_s"]
    step.central_cpu_s, step.kiosks_cpu_s, step.consoles_cpu_s = (proc_cpu_s(p) - c for p, c in zip(pids, cpu0))
    step.central_wait_s = proc_wait_s(front.pid) - wait0
    step.others_cpu_s = {who: proc_cpu_s(pid) - others0[who] for who, pid in others.items()}
    step.add(sent, seen, expected)
    if sent["closed"] or seen["closed"]:
        step.failures[f"{sent['closed']} kiosks and {seen['closed']} consoles were disconnected"] += 1
    if front.problem_count():
        step.failures["central logged warnings or errors"] += front.problem_count()
    return step


def report(args, name: str, setup: str, steps: list[Step], rss_mb: float, rss_peak_mb: float, kb_per_socket: float,
           sockets: int, idle_pct: float, hub_cpu: float | None, problems: list[str]) -> None:
    passed = [s for s in steps if s.passed]
    best = max(passed, key=lambda s: s.achieved_rate, default=None)
    print()
    print(f"central at scale ({name}): {args.scale_kiosks} kiosks, {args.scale_consoles} consoles, "
          f"{args.scale_departments} departments; {setup}, the load generator in two more; {os.cpu_count()} CPUs")
    print(f"  memory                 VmRSS {rss_mb:.1f} MB with {sockets} idle sockets ({kb_per_socket:.1f} KB per "
          f"socket), peak {rss_peak_mb:.1f} MB; idle, central uses {idle_pct:.1f} % of a core")
    print(f"  steps ({args.scale_step_s:g} s each, cancel {args.scale_hold_s:g} s after visit.queued; pass: all "
          f"consoles, no failure, p99 <= {P99_LIMIT_MS:g} ms, >= 95 % of the rate):")
    for step in steps:
        print(f"    {step.describe()}")
    if best is not None:
        print(f"  sustained              {best.achieved_rate:.0f} joins/s with visit -> console p99 {best.p(99):.1f} ms "
              f"(central CPU {best.central_cpu_s_per_1000:.2f} s per 1,000 visits)")
    else:
        print("  sustained              none: even the first step failed")
    if hub_cpu is not None:
        print(f"  the hub alone          {hub_cpu:.3f} s of CPU per 1,000 visits (no sockets; _scale/hub_alone.py)")
    print(f"  central log            {len(problems)} warning/error lines")
    for line in problems[:5]:
        print(f"                         {line[:150]}")
    print()
    emit(f"{name}_joins_per_s_p99_100ms", best.achieved_rate if best else 0.0, "joins/s")
    emit(f"{name}_rss_mb", rss_mb, "MB")
    emit(f"{name}_kb_per_socket", kb_per_socket, "KB")
    if math.isfinite(rss_peak_mb):   # not when the serving central was gone at the end
        emit(f"{name}_rss_peak_mb", rss_peak_mb, "MB")
    emit(f"{name}_idle_cpu_pct", idle_pct, "%")
    if hub_cpu is not None:
        emit(f"{name}_hub_cpu_s_per_1000_visits", hub_cpu, "s")
    if best is not None:
        emit(f"{name}_p99_ms_at_sustained", best.p(99), "ms")
        emit(f"{name}_central_cpu_s_per_1000_visits", best.central_cpu_s_per_1000, "s")


def add_arguments(parser) -> None:
    group = parser.add_argument_group(NAME)
    group.add_argument("--scale-kiosks", type=int, default=5000, help="idle kiosk connections (default 5000)")
    group.add_argument("--scale-consoles", type=int, default=500, help="clerk consoles (default 500)")
    group.add_argument("--scale-departments", type=int, default=50, help="departments (default 50)")
    group.add_argument("--scale-rates", default="100,200,300,400,500,600,700,800,1000,1200",
                       help="the steps' visit rates, per second, in order (default 100,...,1200)")
    group.add_argument("--scale-step-s", type=float, default=4.0, help="seconds of visits per step (default 4)")
    group.add_argument("--scale-hold-s", type=float, default=1.0,
                       help="a visit waits this long after visit.queued before its kiosk cancels (default 1)")
    group.add_argument("--scale-max-s", type=float, default=600.0,
                       help="no new step after this many seconds of steps (default 600)")
    group.add_argument("--scale-all-steps", action="store_true",
                       help="run every step of --scale-rates, also after one failed (the figure is still the best "
                            "passing step)")
    group.add_argument("--scale-keep-tmp", action="store_true", help="keep the temporary database and central.log")


def kiosk_plan(args) -> KioskPlan:
    """A kiosk asks at most twice in a row (``Allowance`` keeps one of central's quick succession in reserve),
    then as central's pace allows; it connects once."""
    return KioskPlan(visit_requests_per_s=VISIT_REQUESTS.per_second, visit_burst=int(VISIT_REQUESTS.capacity) - 1)


def run(args, name: str = NAME) -> int:
    for option in ("scale_kiosks", "scale_consoles", "scale_departments"):
        if getattr(args, option) < 1:
            note(f"{name}: --{option.replace('_', '-')} must be at least 1")
            return 2
    return run_in_tmp(name, lambda tmp: _run(args, tmp, name), f"amtsklingel-{name}-", keep=args.scale_keep_tmp)


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
