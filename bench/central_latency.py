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

Visits are started open-loop at ``--rate`` per second (the start times are
fixed in advance; a visit starts on the kiosk idle longest). If no kiosk is
free a start is late, which is reported as "start lag" and lowers the achieved
rate, instead of silently measuring a backlog. A warm-up (not reported) comes
first. The optional ramp then runs short steps at rising rates and reports the
highest achieved rate whose last-console p99 stayed under ``--ramp-p99-ms``
with no failed visit and >= 95 % of the target rate.

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
"""
from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import aiohttp

from bench._central import CLERK_PASSWORD, DEPARTMENT, Server, add_kiosks_and_clerks, login
from bench._common import BenchError, emit, note, percentile, proc_cpu_s, proc_status_mb, run_in_tmp

NAME = "central_latency"
STAGE_TIMEOUT_S = 10.0      # any one wait: reply from central, all consoles, cancel acknowledged
CONNECT_CONCURRENCY = 8     # logins are argon2-bound on the server; parallelism buys nothing
RAMP_MAX_STEPS = 12
RAMP_MAX_VISITS_PER_STEP = 6000
LOOP_TICK_S = 0.005
SETTLE_WINDOW_S = 0.5
SETTLE_IDLE = 0.05          # of one core: central counts as idle below this
SETTLE_MAX_S = 60.0


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


# -- central as a separate process ---------------------------------------------

# -- clients ------------------------------------------------------------------

class Tracker:
    """Which consoles have shown one visit, and when the first and the last did."""
    __slots__ = ("count", "first", "last", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.done = loop.create_future()


class Console:
    def __init__(self, bench: Bench, username: str, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse):
        self.bench, self.username, self.session, self.ws = bench, username, session, ws
        self.snapshot: asyncio.Future = asyncio.get_running_loop().create_future()
        self.frames = 0
        self.errors: list[dict] = []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        got = self.bench.console_got
        async for msg in self.ws:  # ends when the socket closes; autoping answers central's heartbeat
            t = perf_counter()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.frames += 1
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "queue.joined":
                got(data["visit"]["visit_id"], t)
            elif kind == "console.snapshot" and not self.snapshot.done():
                self.snapshot.set_result(data)
            elif kind == "error":
                self.errors.append(data)
        if not self.snapshot.done():
            self.snapshot.set_exception(BenchError(f"console {self.username} closed before its snapshot"))
        self.bench.closed_consoles += 1


class Kiosk:
    WANTED = frozenset({"welcome", "visit.queued", "visit.ended", "visit.refused", "error"})

    def __init__(self, bench: Bench, ws: aiohttp.ClientWebSocketResponse):
        self.bench, self.ws = bench, ws
        self.inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.healthy = True
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            t = perf_counter()
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") in self.WANTED:  # visit.position etc. are not needed here
                    self.inbox.put_nowait((t, data))
        self.healthy = False
        self.inbox.put_nowait((perf_counter(), {"type": "closed"}))

    async def expect(self, kind: str, visit_id: str | None = None) -> tuple[float, dict]:
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            while True:
                t, data = await self.inbox.get()
                if data["type"] == kind and (visit_id is None or data.get("visit_id") == visit_id):
                    return t, data
                if data["type"] in ("error", "visit.refused", "closed"):
                    raise VisitFailed(f"{data['type']}: {data.get('code') or data.get('reason') or ''}".strip())

    async def visit(self, scheduled: float) -> Sample:
        bench = self.bench
        sent = perf_counter()
        await self.ws.send_str(bench.request_frame)
        try:
            t_queued, queued = await self.expect("visit.queued")
        except BaseException:
            self.healthy = False  # a late visit.queued would leave it with a waiting visit
            raise
        visit_id = queued["visit_id"]
        tracker = bench.tracker(visit_id)
        try:
            async with asyncio.timeout(STAGE_TIMEOUT_S):
                await asyncio.shield(tracker.done)
            return Sample(scheduled, sent, (t_queued - sent) * 1000, (tracker.first - sent) * 1000,
                          (tracker.last - sent) * 1000)
        except TimeoutError:
            raise VisitFailed(f"only {tracker.count} of {bench.n_consoles} consoles got queue.joined") from None
        finally:
            try:
                await self.ws.send_str(json.dumps({"v": 1, "type": "visit.cancel", "visit_id": visit_id}))
                await self.expect("visit.ended", visit_id)
            except BaseException:
                self.healthy = False  # it may still have a waiting visit: keep it out of the pool
                raise
            finally:
                bench.trackers.pop(visit_id, None)


class Bench:
    def __init__(self, url: str, n_consoles: int):
        self.url = url
        self.ws_url = url.replace("http://", "ws://", 1)
        self.n_consoles = n_consoles
        self.loop = asyncio.get_running_loop()
        self.trackers: dict[str, Tracker] = {}
        self.consoles: list[Console] = []
        self.kiosks: list[Kiosk] = []
        self.idle: asyncio.Queue[Kiosk] = asyncio.Queue()
        self.sessions: list[aiohttp.ClientSession] = []
        self.overcounted = 0
        self.closed_consoles = 0
        self.request_frame = json.dumps({"v": 1, "type": "visit.request", "department": DEPARTMENT,
                                         "language": "de"})

    # -- matching (called from console readers) ----------------------------------
    def tracker(self, visit_id: str) -> Tracker:
        tracker = self.trackers.get(visit_id)
        if tracker is None:
            tracker = self.trackers[visit_id] = Tracker(self.loop)
        return tracker

    def console_got(self, visit_id: str, t: float) -> None:
        tracker = self.tracker(visit_id)
        tracker.count += 1
        if tracker.first is None:
            tracker.first = t
        tracker.last = t
        if tracker.count == self.n_consoles:
            if not tracker.done.done():
                tracker.done.set_result(None)
        elif tracker.count > self.n_consoles:
            self.overcounted += 1

    # -- connecting ---------------------------------------------------------------
    async def connect_console(self, username: str, password: str) -> Console:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                        timeout=aiohttp.ClientTimeout(total=STAGE_TIMEOUT_S))
        self.sessions.append(session)
        if (status := await login(session, self.url, username, password)) != 302:
            raise BenchError(f"login of {username} failed: {status}")
        ws = await session.ws_connect(self.ws_url + "/ws/staff", headers={"Origin": self.url},
                                      timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=STAGE_TIMEOUT_S))
        console = Console(self, username, session, ws)
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            snapshot = await console.snapshot
        if DEPARTMENT not in {d["slug"] for d in snapshot["departments"]}:
            raise BenchError(f"{username} does not serve {DEPARTMENT}")
        return console

    async def connect_kiosk(self, session: aiohttp.ClientSession, token: str) -> Kiosk:
        ws = await session.ws_connect(self.ws_url + "/ws/kiosk", headers={"Authorization": f"Bearer {token}"},
                                      timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=STAGE_TIMEOUT_S))
        kiosk = Kiosk(self, ws)
        _, welcome = await kiosk.expect("welcome")
        if not any(d["slug"] == DEPARTMENT and d["open"] for d in welcome["departments"]):
            raise BenchError(f"{DEPARTMENT} is not open for kiosks")
        return kiosk

    async def connect(self, clerks: list[tuple[str, str]], kiosk_tokens: list[str]) -> None:
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def bounded(coro):
            async with limit:
                return await coro

        self.consoles = list(await asyncio.gather(*(bounded(self.connect_console(u, p)) for u, p in clerks)))
        kiosk_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=STAGE_TIMEOUT_S))
        self.sessions.append(kiosk_session)
        self.kiosks = list(await asyncio.gather(*(bounded(self.connect_kiosk(kiosk_session, t))
                                                  for t in kiosk_tokens)))
        for kiosk in self.kiosks:
            self.idle.put_nowait(kiosk)

    async def close(self) -> None:
        sockets = [c.ws for c in self.consoles] + [k.ws for k in self.kiosks]
        if sockets:
            await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in sockets], timeout=STAGE_TIMEOUT_S)
        for task in [c.task for c in self.consoles] + [k.task for k in self.kiosks]:
            task.cancel()
        for session in self.sessions:
            await session.close()

    # -- running ------------------------------------------------------------------
    async def _one(self, kiosk: Kiosk, scheduled: float, phase: Phase) -> None:
        try:
            phase.samples.append(await kiosk.visit(scheduled))
        except (VisitFailed, TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            phase.failures[f"{type(exc).__name__}: {exc}"[:120]] += 1
        finally:
            if kiosk.healthy and not kiosk.ws.closed:
                self.idle.put_nowait(kiosk)

    async def _watch_loop(self, lags: list[float]) -> None:
        while True:  # cancelled at the end of the phase
            t = perf_counter()
            await asyncio.sleep(LOOP_TICK_S)
            lags.append((perf_counter() - t - LOOP_TICK_S) * 1000)

    async def run_phase(self, label: str, visits: int, rate: float, server: Server) -> Phase:
        """Run ``visits`` visits at ``rate``, then wait until central is idle again (see :func:`settle`)."""
        phase = Phase(label, rate, visits)
        server_pid = server.pid
        problems0 = server.problem_count()
        gc.collect()
        watcher = self.loop.create_task(self._watch_loop(phase.loop_lag_ms))
        tasks: set[asyncio.Task] = set()
        server0, client0, wall0 = proc_cpu_s(server_pid), proc_cpu_s(os.getpid()), perf_counter()
        start = wall0 + 0.02
        dispatch_deadline = start + visits / rate + 3 * STAGE_TIMEOUT_S
        try:
            for i in range(visits):
                scheduled = start + i / rate
                delay = scheduled - perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    async with asyncio.timeout(max(0.1, dispatch_deadline - perf_counter())):
                        kiosk = await self.idle.get()
                except TimeoutError:
                    raise BenchError(f"{label}: no kiosk became free; {sum(phase.failures.values())} "
                                     f"visits failed: {dict(phase.failures)}") from None
                task = self.loop.create_task(self._one(kiosk, scheduled, phase))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(set(tasks), timeout=4 * STAGE_TIMEOUT_S)
        finally:
            phase.wall_s = perf_counter() - wall0
            phase.server_cpu_s = proc_cpu_s(server_pid) - server0
            phase.client_cpu_s = proc_cpu_s(os.getpid()) - client0
            watcher.cancel()
            for task in list(tasks):
                task.cancel()
        phase.settle_s = await settle(server_pid)
        phase.server_cpu_total_s = proc_cpu_s(server_pid) - server0
        phase.server_problems = server.problem_count() - problems0
        missing = visits - len(phase.samples) - sum(phase.failures.values())
        if missing:
            phase.failures["unfinished after the phase timeout"] += missing
        return phase


async def settle(server_pid: int, max_s: float = SETTLE_MAX_S) -> float:
    """Wait until central's CPU use stays below SETTLE_IDLE of a core for one window (at most ``max_s``).

    Central writes each ended visit's anonymous counters in the background; at
    high rates those writes lag behind, and a next phase must not inherit them.
    Returns the seconds waited.
    """
    t0 = perf_counter()
    while perf_counter() - t0 < max_s:
        cpu0 = proc_cpu_s(server_pid)
        await asyncio.sleep(SETTLE_WINDOW_S)
        if proc_cpu_s(server_pid) - cpu0 < SETTLE_IDLE * SETTLE_WINDOW_S:
            break
    return perf_counter() - t0


# -- reporting ----------------------------------------------------------------

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


# -- the run --------------------------------------------------------------------

def _passes(phase: Phase, p99_limit_ms: float) -> bool:
    return (not phase.failures and len(phase.samples) == phase.planned and not phase.server_problems
            and phase.p("last_ms", 99) < p99_limit_ms and phase.achieved_rate >= 0.95 * phase.target_rate)


async def _ramp(bench: Bench, args, server: Server) -> tuple[list[tuple[Phase, bool]], Phase | None]:
    steps: list[tuple[Phase, bool]] = []
    best: Phase | None = None
    passed, failed = 0.0, math.inf
    rate = args.rate
    for _ in range(RAMP_MAX_STEPS):
        visits = int(min(RAMP_MAX_VISITS_PER_STEP, max(args.ramp_step_visits, rate * args.ramp_step_s)))
        phase = await bench.run_phase(f"ramp {rate:.0f}/s", visits, rate, server)
        ok = _passes(phase, args.ramp_p99_ms)
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
            ramp, best = await _ramp(bench, args, server)
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


def run(args) -> int:
    if args.warmup is None:
        args.warmup = 20 if args.quick else 100
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-bench-", keep=args.keep_tmp)


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
