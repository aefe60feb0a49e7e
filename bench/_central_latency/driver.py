"""Drives central: logs in the consoles, connects the kiosks, and runs phases of visits started at a fixed rate,
each followed by waiting until central is idle again."""
from __future__ import annotations

import asyncio
import gc
import json
import os
from time import perf_counter

import aiohttp

from bench._central import DEPARTMENT, Server, login_retrying
from bench._central_latency import STAGE_TIMEOUT_S
from bench._central_latency.clients import Console, Kiosk, Tracker
from bench._central_latency.phases import Phase, VisitFailed
from bench._common import BenchError, proc_cpu_s
from bench._limits import VISIT_REQUESTS, Allowance, RateLimited, kiosks_for, limit_text

CONNECT_CONCURRENCY = 8     # logins are argon2-bound on the server; parallelism buys nothing
LOOP_TICK_S = 0.005
SETTLE_WINDOW_S = 0.5
SETTLE_IDLE = 0.05          # of one core: central counts as idle below this
SETTLE_MAX_S = 60.0


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
        self.allowance = Allowance()              # each kiosk's visit requests as central counts them
        self.refused: RateLimited | None = None   # central said rate_limited: the run is wrong, it stops
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
        await login_retrying(session, self.url, username, password)
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
        except RateLimited as exc:
            self.refused = self.refused or exc
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
                if self.refused:
                    raise self.refused
                if not self.allowance.take(kiosk):
                    raise BenchError(f"{label}: a kiosk would ask for its next visit sooner than central allows "
                                     f"({limit_text(VISIT_REQUESTS)}); at {rate:g} visits/s use at least "
                                     f"--kiosks {kiosks_for(rate)}")
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
        if self.refused:
            raise self.refused
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
