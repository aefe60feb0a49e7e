"""Visit request at a kiosk -> queue.joined on every clerk console of the department.

What is measured
----------------
Central runs as its own process (``python -m central --config <tmp>/central.toml
serve``, temporary SQLite database, 127.0.0.1, a free port). This process holds
every client in one asyncio loop: ``--consoles`` clerk consoles logged in as
members of "buergerbuero" (the demo clerk plus ``bench-clerk-NNN``) and
``--kiosks`` kiosks (the demo kiosk plus ``Bench-Kiosk NNN``).

One visit: an idle kiosk sends ``visit.request``; the latency is taken from
just before that send to the moment each console's reader sees the matching
``queue.joined`` (matched by ``visit_id``). Recorded per visit: to the *first*
console and to the *last* console (= every console shows it). Then the kiosk
sends ``visit.cancel`` and waits for ``visit.ended``, so the waiting room stays
short. All times are ``time.perf_counter()`` in this one process.

Kiosks: a real kiosk carries one citizen at a time, and central allows a kiosk 3 visit requests in
quick succession, then one per 20 s (``VISIT_REQUESTS`` in central/live/limits.py; more is answered
``rate_limited``). So the visits are spread over ``--rate`` × 20 s × 1.25 kiosks by default (2,500 at
100/s; ``bench/_limits.py``), each asking about once per 25 s. A run with fewer ``--kiosks`` stops
with a message naming the limit before central would refuse, and a ``rate_limited`` answer stops it too.

Visits are started open-loop at ``--rate`` per second (the start times are
fixed in advance; a visit starts on the kiosk idle longest). If no kiosk is
free a start is late, which is reported as "start lag" and lowers the achieved
rate, instead of silently measuring a backlog. A warm-up (not reported) comes
first. The optional ramp then runs short steps at rising rates and reports the
highest achieved rate whose last-console p99 stayed under ``--ramp-p99-ms``
with no failed visit and >= 95 % of the target rate. Its steps use at most 2
requests of each kiosk's quick succession (so at most 2 × kiosks visits), and
it waits before a step until every kiosk may ask again (``_central_latency/ramp.py``).

Client vs server: CPU seconds of both processes are read from
``/proc/<pid>/stat`` (utime+stime, all threads) over each phase, and the client
loop's own lag (oversleep of a 5 ms timer) is sampled. If the client's CPU
nears one core, or its loop lag is a large part of the latency, the figures
describe this client, not central. Server memory is ``VmRSS``/``VmHWM`` of
``/proc/<pid>/status``.

Central writes one anonymous counter row per ended visit in the background.
Near saturation those SQLite commits fall behind (central stays busy for
seconds after a phase; each phase waits for it to go idle before the next one)
and can fail with "database is locked"; a phase in which central logged a
warning or error does not pass. The database and central.log live in the
system temp directory: set ``TMPDIR=/dev/shm`` to take the disk out of the
ramp figure. The ramp figure depends on the machine and varies from run to
run by tens of percent; the latency figures at the paced rate do not.

Nothing leaves loopback; every wait has a timeout; every loop is bounded.

The parts are in ``bench/_central_latency/``: ``clients.py`` (consoles and kiosks), ``driver.py``
(connecting them, running a phase), ``phases.py`` (what a phase measured), ``ramp.py`` and ``report.py``.
"""
from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from time import perf_counter

import aiohttp

from bench._central import CLERK_PASSWORD, Server, add_kiosks_and_clerks
from bench._central_latency.driver import Bench
from bench._central_latency.ramp import ramp as run_ramp
from bench._central_latency.report import describe, report
from bench._common import note, proc_status_mb, run_in_tmp
from bench._limits import VISIT_REQUESTS, KioskPlan, kiosks_for

NAME = "central_latency"


async def _run(args, tmp: Path) -> int:
    server = Server(tmp)
    note(f"central on {server.url}, data in {tmp}")
    credentials = server.demo_data()
    extra_tokens, extra_clerks = await add_kiosks_and_clerks(server.database_url, args.kiosks - 1, args.consoles - 1)
    clerks = [(credentials["clerk_user"], credentials["clerk_password"])] + [(u, CLERK_PASSWORD) for u in extra_clerks]
    tokens = [credentials["kiosk_token"]] + extra_tokens
    server.start()
    bench = None
    try:
        async with aiohttp.ClientSession() as probe:
            await server.wait_ready(probe)
        bench = Bench(server.url, len(clerks))
        t = perf_counter()
        await bench.connect(clerks, tokens)
        note(f"connected {len(bench.consoles)} consoles and {len(bench.kiosks)} kiosks in {perf_counter() - t:.1f} s")
        await asyncio.sleep(0.5)
        gc.freeze()  # the set-up objects stay; collections during the run only look at new ones
        if args.warmup:
            note(describe(await bench.run_phase("warm-up", args.warmup, args.rate, server)))
        main = await bench.run_phase("measured", args.visits, args.rate, server)
        note(describe(main))
        rss, hwm = proc_status_mb(server.pid, "VmRSS"), proc_status_mb(server.pid, "VmHWM")
        if main.server_problems:
            main.failures[f"central logged {main.server_problems} warnings/errors"] += 1
        ramp, best = ([], None)
        if args.ramp and not args.quick:
            note(f"ramp from {args.rate:.0f}/s (pass: last-console p99 < {args.ramp_p99_ms:g} ms)")
            ramp, best = await run_ramp(bench, args, server)
        if bench.closed_consoles:
            main.failures[f"{bench.closed_consoles} consoles were disconnected"] += 1
        if bench.overcounted:
            main.failures[f"{bench.overcounted} duplicate queue.joined frames"] += 1
        console_errors = sum(len(c.errors) for c in bench.consoles)
        if console_errors:
            main.failures[f"{console_errors} error frames to consoles"] += 1
        report(args, main, rss, hwm, ramp, best, server.log_problems(), len(bench.consoles), len(bench.kiosks))
        return 1 if main.failures or len(main.samples) < main.planned else 0
    finally:
        if bench is not None:
            await bench.close()
        code = server.stop()
        note(f"central stopped (exit code {code})")


def add_arguments(parser) -> None:
    group = parser.add_argument_group(NAME)
    group.add_argument("--warmup", type=int, default=None, help="unreported warm-up visits (default 100; 20 with --quick)")
    group.add_argument("--no-ramp", dest="ramp", action="store_false",
                       help="skip the max-sustained-rate ramp (always skipped with --quick)")
    group.add_argument("--ramp-p99-ms", type=float, default=100.0, help="ramp pass limit for last-console p99 (ms)")
    group.add_argument("--ramp-max-rate", type=float, default=4000.0, help="highest rate the ramp tries (visits/s)")
    group.add_argument("--ramp-step-s", type=float, default=4.0, help="seconds per ramp step (at its target rate)")
    group.add_argument("--ramp-step-visits", type=int, default=400, help="at least this many visits per ramp step")
    group.add_argument("--keep-tmp", action="store_true", help="keep the temporary config, database and central.log")


def kiosk_plan(args) -> KioskPlan:
    """The most one kiosk asks of central: the paced phases take the kiosks in turns, one visit each per
    ``kiosks / rate`` seconds; a ramp step at most ``RAMP_REQUESTS_PER_KIOSK`` in a row, after waiting
    until each kiosk has them again (so never faster than central's pace). Each kiosk connects once."""
    from bench._central_latency.ramp import RAMP_REQUESTS_PER_KIOSK

    kiosks = args.kiosks or kiosks_for(args.rate)
    ramp = args.ramp and not args.quick
    return KioskPlan(visit_requests_per_s=VISIT_REQUESTS.per_second if ramp else args.rate / kiosks,
                     visit_burst=RAMP_REQUESTS_PER_KIOSK if ramp else 1)


def run(args) -> int:
    if args.warmup is None:
        args.warmup = 20 if args.quick else 100
    if args.kiosks is None:
        args.kiosks = kiosks_for(args.rate)
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-bench-", keep=args.keep_tmp)


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
