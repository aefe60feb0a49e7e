"""A fleet of 2,000 kiosks reporting health to one central while 50 consoles run visits.

What is measured
----------------
Central runs as its own process (bench/_central.py: temporary SQLite database, 127.0.0.1).
This process holds every client in one asyncio loop: ``--fleet-kiosks`` kiosks on real
WebSockets (the demo kiosk plus ``Bench-Kiosk NNNN``), each sending a ``kiosk.health`` report
every 30 s at its own offset in the 30 s (spread evenly at random), and ``--consoles`` clerk
consoles of the Bürgerbüro.

1. Connect consoles, then kiosks; wait one report period so every kiosk has reported.
2. Health phase (``--fleet-window-s``): only the reports. ``fleet_health_cpu_per_kiosk`` is
   central's CPU time (utime+stime from /proc) in the phase, per kiosk and minute. It includes
   everything central does for a connected kiosk in that time (WebSocket heartbeats too), so it
   is the whole cost of keeping a kiosk, not of the report alone.
   ``fleet_rss_per_kiosk``: central's VmRSS with all kiosks connected and reported, minus VmRSS
   before the first kiosk connected (consoles already in), per kiosk.
3. Visit phase (same length, reports going on): visits at ``--fleet-visit-rate`` per second. One
   visit: a kiosk sends ``visit.request``; a free console picks it up (``visit.pickup``), the
   kiosk gets ``call.start``, the clerk hangs up, the kiosk gets ``visit.ended``.
   ``fleet_visit_p99_ms``: from just before ``visit.request`` to ``queue.joined`` at the last of
   the consoles (as in central_latency), p99. Meanwhile an admin loads the fleet page with every
   kiosk on it (``/admin/fleet?per_page=N``), and in turn the page as it opens (the first 100 of
   them, ``/admin/fleet``), one load every ``--fleet-page-every-s`` seconds. ``fleet_page_ms`` is
   the median of the full page (request sent to the last byte read), ``fleet_page_first_100_ms``
   that of the first page; central renders them beside its event loop, and the visits feel it.

Nothing leaves loopback; every wait has a timeout; every loop is bounded (phases end by time,
each visit by STAGE_TIMEOUT_S).
"""
from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
from collections import Counter
from pathlib import Path
from time import perf_counter

import aiohttp

from bench._central import CLERK_PASSWORD, DEPARTMENT, Server, add_kiosks_and_clerks, login, login_retrying
from bench._common import BenchError, emit, note, percentile, proc_cpu_s, proc_status_mb, run_in_tmp
from bench._limits import KioskPlan, RateLimited, kiosks_for

NAME = "fleet"
STAGE_TIMEOUT_S = 10.0
REPORT_EVERY_S = 30.0
KIOSK_CONNECT_CONCURRENCY = 50
CONSOLE_CONNECT_CONCURRENCY = 4   # logins are argon2-bound on the server
VISIT_POOL = 400                  # at least this many kiosks take turns at visits (more at higher rates)


def visit_pool(args) -> int:
    """Kiosks taking turns at visits: central allows one request per kiosk per 20 s (bench/_limits.py)."""
    return min(args.fleet_kiosks, max(VISIT_POOL, kiosks_for(args.fleet_visit_rate)))


def kiosk_plan(args) -> KioskPlan:
    """The visit pool takes turns, one visit per kiosk every ``pool / rate`` seconds; each kiosk connects once.
    (Health reports, every 30 s, are far within FLEET_REPORTS.)"""
    return KioskPlan(visit_requests_per_s=args.fleet_visit_rate / visit_pool(args), visit_burst=1)


def health_frame(rng: random.Random) -> str:
    devices = {name: {"state": "ok", "source": "selftest"} for name in ("camera", "microphone", "speaker", "button")}
    return json.dumps({"type": "kiosk.health", "version": "0.3.0+bench", "slot": rng.choice(["A", "B"]),
                       "uptime_s": rng.randrange(60, 10**6), "boot_reason": "power_on", "devices": devices,
                       "cpu_temp_c": round(rng.uniform(40, 75), 1), "throttling": [], "throttling_since_boot": [],
                       "data_used_bytes": rng.randrange(10**8, 10**9), "data_total_bytes": 4 * 10**9,
                       "rtt_ms": round(rng.uniform(2, 40), 1), "faults": [], "settings_version": 0})


class Kiosk:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.reports = 0
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:  # autoping answers central's heartbeat while this reads
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") in ("welcome", "visit.queued", "call.start", "visit.ended", "visit.refused",
                                        "error"):
                    self.inbox.put_nowait((perf_counter(), data))
        self.inbox.put_nowait((perf_counter(), {"type": "closed"}))

    async def expect(self, kind: str) -> tuple[float, dict]:
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            while True:
                t, data = await self.inbox.get()
                if data["type"] == kind:
                    return t, data
                if data["type"] == "error" and data.get("code") == "rate_limited":
                    raise RateLimited(f"a kiosk's message (awaiting {kind})", f"retry after {data.get('retry_after_s')} s")
                if data["type"] in ("error", "visit.refused", "closed"):
                    raise BenchError(f"kiosk got {data['type']}: {data.get('code') or data.get('reason') or ''}")

    async def report(self, offset_s: float, until: float, rng: random.Random) -> None:
        """A report at ``offset_s`` into the period, then every REPORT_EVERY_S until ``until``."""
        await asyncio.sleep(offset_s)
        while perf_counter() < until and not self.ws.closed:
            await self.ws.send_str(health_frame(rng))
            self.reports += 1
            await asyncio.sleep(REPORT_EVERY_S)


class Console:
    def __init__(self, fleet: Fleet, ws: aiohttp.ClientWebSocketResponse):
        self.fleet, self.ws = fleet, ws
        self.snapshot = asyncio.get_running_loop().create_future()
        self.assigned: dict[str, asyncio.Future] = {}
        self.errors: list[dict] = []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            t = perf_counter()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "queue.joined":
                self.fleet.joined(data["visit"]["visit_id"], t)
            elif kind == "call.assigned" and (f := self.assigned.get(data["visit"]["visit_id"])) and not f.done():
                f.set_result(None)
            elif kind == "console.snapshot" and not self.snapshot.done():
                self.snapshot.set_result(data)
            elif kind == "error":
                self.errors.append(data)


class Fleet:
    def __init__(self, url: str):
        self.url, self.ws_url = url, url.replace("http://", "ws://", 1)
        self.kiosks: list[Kiosk] = []
        self.consoles: list[Console] = []
        self.free_consoles: asyncio.Queue[Console] = asyncio.Queue()
        self.sessions: list[aiohttp.ClientSession] = []
        self.seen: dict[str, list[float]] = {}    # visit id -> times its queue.joined arrived at consoles
        self.all_seen: dict[str, asyncio.Future] = {}
        self.visit_spans: list[tuple[float, float]] = []   # (sent, last console) of each visit
        self.page_spans: list[tuple[float, float]] = []    # (sent, read) of each fleet page load

    def joined(self, visit_id: str, t: float) -> None:
        times = self.seen.setdefault(visit_id, [])
        times.append(t)
        if len(times) == len(self.consoles) and (f := self.all_seen.get(visit_id)) and not f.done():
            f.set_result(None)

    async def connect(self, clerks: list[str], tokens: list[str]) -> None:
        consoles_limit, kiosks_limit = (asyncio.Semaphore(CONSOLE_CONNECT_CONCURRENCY),
                                        asyncio.Semaphore(KIOSK_CONNECT_CONCURRENCY))

        async def console(username: str) -> Console:
            async with consoles_limit:
                session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                                timeout=aiohttp.ClientTimeout(total=STAGE_TIMEOUT_S * 3))
                self.sessions.append(session)
                password = CLERK_PASSWORD if username.startswith("bench-clerk") else self.clerk_password
                await login_retrying(session, self.url, username, password)
                ws = await session.ws_connect(self.ws_url + "/ws/staff", headers={"Origin": self.url},
                                              timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5))
                c = Console(self, ws)
                async with asyncio.timeout(STAGE_TIMEOUT_S):
                    await c.snapshot
                return c

        self.consoles = list(await asyncio.gather(*(console(u) for u in clerks)))
        for c in self.consoles:
            self.free_consoles.put_nowait(c)
        self.rss_before_kiosks_mb = proc_status_mb(self.server_pid, "VmRSS")
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                        timeout=aiohttp.ClientTimeout(total=STAGE_TIMEOUT_S * 3))
        self.sessions.append(session)

        async def kiosk(token: str) -> Kiosk:
            async with kiosks_limit:
                ws = await session.ws_connect(self.ws_url + "/ws/kiosk", headers={"Authorization": f"Bearer {token}"},
                                              timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5))
                k = Kiosk(ws)
                await k.expect("welcome")
                return k

        self.kiosks = list(await asyncio.gather(*(kiosk(t) for t in tokens)))

    async def visit(self, kiosk: Kiosk) -> float:
        """One visit from request to end; returns ms until the last console showed it."""
        sent = perf_counter()
        await kiosk.ws.send_str(json.dumps({"type": "visit.request", "department": DEPARTMENT, "language": "de"}))
        _, queued = await kiosk.expect("visit.queued")
        visit_id = queued["visit_id"]
        done = self.all_seen.setdefault(visit_id, asyncio.get_running_loop().create_future())
        if len(self.seen.get(visit_id, ())) == len(self.consoles):
            done.set_result(None)
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            await done
        latency_ms = (max(self.seen.pop(visit_id)) - sent) * 1000
        self.visit_spans.append((sent, sent + latency_ms / 1000))
        self.all_seen.pop(visit_id, None)
        async with asyncio.timeout(STAGE_TIMEOUT_S):
            console = await self.free_consoles.get()
        try:
            assigned = console.assigned[visit_id] = asyncio.get_running_loop().create_future()
            await console.ws.send_str(json.dumps({"type": "visit.pickup", "visit_id": visit_id}))
            async with asyncio.timeout(STAGE_TIMEOUT_S):
                await assigned
            await kiosk.expect("call.start")
            await console.ws.send_str(json.dumps({"type": "visit.hangup", "visit_id": visit_id}))
            await kiosk.expect("visit.ended")
        finally:
            console.assigned.pop(visit_id, None)
            self.free_consoles.put_nowait(console)
        return latency_ms

    async def close(self) -> None:
        sockets = [c.ws for c in self.consoles] + [k.ws for k in self.kiosks]
        if sockets:
            await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in sockets], timeout=STAGE_TIMEOUT_S)
        for task in [c.reader for c in self.consoles] + [k.reader for k in self.kiosks]:
            task.cancel()
        for session in self.sessions:
            await session.close()


async def _visits(fleet: Fleet, rate: float, pool_size: int, until: float, latencies: list[float],
                  failures: Counter) -> None:
    pool: asyncio.Queue[Kiosk] = asyncio.Queue()
    for k in fleet.kiosks[:pool_size]:
        pool.put_nowait(k)
    tasks: set[asyncio.Task] = set()
    refused: list[RateLimited] = []

    async def one(kiosk: Kiosk) -> None:
        try:
            latencies.append(await fleet.visit(kiosk))
            pool.put_nowait(kiosk)
        except RateLimited as exc:  # a wrong plan, not a slow visit: the run stops with the limit's name
            refused.append(exc)
        except (BenchError, TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            failures[f"{type(exc).__name__}: {exc}"[:100]] += 1  # that kiosk may hold a visit: not reused

    start, i = perf_counter(), 0
    while (due := start + i / rate) < until:
        await asyncio.sleep(max(0.0, due - perf_counter()))
        if refused:
            raise refused[0]
        if pool.empty():
            failures["no idle kiosk at a start time"] += 1
        else:
            task = asyncio.get_running_loop().create_task(one(pool.get_nowait()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks, timeout=4 * STAGE_TIMEOUT_S)
    if refused:
        raise refused[0]


async def _pages(session: aiohttp.ClientSession, urls: dict[str, str], every_s: float, until: float,
                 times: dict[str, list[float]], spans: list[tuple[float, float]]) -> None:
    """Load each of ``urls`` in turn, one every ``every_s`` seconds, until ``until``."""
    turn = 0
    while perf_counter() < until:
        name, url = list(urls.items())[turn % len(urls)]
        turn += 1
        t = perf_counter()
        async with session.get(url) as r:
            body = await r.read()
            if r.status != 200:
                raise BenchError(f"fleet page: HTTP {r.status}")
        times[name].append((perf_counter() - t) * 1000)
        spans.append((t, perf_counter()))
        if len(times[name]) == 1:
            note(f"fleet page {url.split('/', 3)[-1]}: {len(body) // 1024} KB, "
                 f"{body.count(b'<tr data-kiosk=')} kiosk rows")
        await asyncio.sleep(max(0.0, min(every_s - (perf_counter() - t), until - perf_counter())))


async def _loop_lag(until: float, lags: list[float]) -> None:
    """How late this process's own loop runs a 5 ms timer: the client's share of the latencies."""
    while perf_counter() < until:
        t = perf_counter()
        await asyncio.sleep(0.005)
        lags.append((perf_counter() - t - 0.005) * 1000)


async def _run(args, tmp: Path) -> int:
    server = Server(tmp)
    credentials = server.demo_data()
    note(f"creating {args.fleet_kiosks - 1} kiosks and {args.consoles - 1} clerks …")
    tokens, clerks = await add_kiosks_and_clerks(server.database_url, args.fleet_kiosks - 1, args.consoles - 1)
    tokens.insert(0, credentials["kiosk_token"])
    server.start()
    fleet = Fleet(server.url)
    fleet.server_pid, fleet.clerk_password = server.pid, credentials["clerk_password"]
    rng = random.Random(9)
    reporters: list[asyncio.Task] = []
    admin = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                  timeout=aiohttp.ClientTimeout(total=60))
    try:
        await server.wait_ready(admin)
        t0 = perf_counter()
        await fleet.connect([credentials["clerk_user"], *clerks], tokens)
        note(f"{len(fleet.consoles)} consoles and {len(fleet.kiosks)} kiosks connected in {perf_counter() - t0:.0f} s")
        end = perf_counter() + REPORT_EVERY_S + 2 * args.fleet_window_s + 5
        reporters = [asyncio.get_running_loop().create_task(k.report(rng.uniform(0, REPORT_EVERY_S), end,
                                                                     random.Random(i)))
                     for i, k in enumerate(fleet.kiosks)]
        gc.collect()
        gc.freeze()  # this process's 4,000 sockets and tasks: kept out of its collections from here on
        await asyncio.sleep(REPORT_EVERY_S + 1)  # every kiosk has reported once
        if (quiet := sum(k.reports == 0 for k in fleet.kiosks)):
            raise BenchError(f"{quiet} kiosks have not reported yet")
        rss_mb = proc_status_mb(server.pid, "VmRSS")
        cpu0, wall0 = proc_cpu_s(server.pid), perf_counter()
        await asyncio.sleep(args.fleet_window_s)
        cpu_s, wall_s = proc_cpu_s(server.pid) - cpu0, perf_counter() - wall0
        n = len(fleet.kiosks)
        health_cpu = cpu_s * 1000 / n / (wall_s / 60)
        rss_per_kiosk = (rss_mb - fleet.rss_before_kiosks_mb) * 1024 / n
        note(f"health phase: central CPU {cpu_s:.2f} s in {wall_s:.0f} s ({cpu_s / wall_s * 100:.1f} % of a core); "
             f"RSS {fleet.rss_before_kiosks_mb:.0f} MB before kiosks, {rss_mb:.0f} MB with {n} kiosks")

        if (status := await login(admin, server.url, credentials["admin_user"], credentials["admin_password"])) != 302:
            raise BenchError(f"admin login failed: {status}")
        latencies: list[float] = []
        failures: Counter = Counter()
        page_ms: dict[str, list[float]] = {"all": [], "first": []}
        lags: list[float] = []
        until = perf_counter() + args.fleet_window_s
        cpu1 = proc_cpu_s(server.pid)
        pages = {"all": f"{server.url}/admin/fleet?per_page={n}", "first": f"{server.url}/admin/fleet"}
        await asyncio.gather(
            _visits(fleet, args.fleet_visit_rate, visit_pool(args), until, latencies, failures),
            _pages(admin, pages, args.fleet_page_every_s, until, page_ms, fleet.page_spans) if args.fleet_pages
            else asyncio.sleep(0),
            _loop_lag(until, lags))
        visit_cpu = proc_cpu_s(server.pid) - cpu1
        latencies.sort()
        for loads in page_ms.values():
            loads.sort()
        errors = sum(len(c.errors) for c in fleet.consoles)
        note(f"visit phase: {len(latencies)} visits, {sum(failures.values())} failed {dict(failures)}, "
             f"console errors {errors}; p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
             f"max {latencies[-1] if latencies else float('nan'):.2f} ms; fleet page with all {n} rows p50 "
             f"{percentile(page_ms['all'], 50):.0f} ms, max {max(page_ms['all'], default=float('nan')):.0f} ms "
             f"({len(page_ms['all'])} loads), first page of 100 p50 {percentile(page_ms['first'], 50):.0f} ms, "
             f"max {max(page_ms['first'], default=float('nan')):.0f} ms; central CPU {visit_cpu:.1f} s; "
             f"{sum(k.reports for k in fleet.kiosks)} health reports in all")
        slow = [(a, b) for a, b in fleet.visit_spans if (b - a) * 1000 > args.fleet_p99_target_ms]
        during_page = sum(any(a < pe and b > ps for ps, pe in fleet.page_spans) for a, b in slow)
        lags.sort()
        note(f"visits over {args.fleet_p99_target_ms:.0f} ms: {len(slow)}, of which {during_page} overlapped a "
             f"fleet page load; this process's own loop lag p99 {percentile(lags, 99):.1f} ms, "
             f"max {max(lags, default=float('nan')):.1f} ms")
        if problems := server.log_problems():
            note("central logged:\n  " + "\n  ".join(problems[:10]))
        emit("fleet_health_cpu_per_kiosk", health_cpu, "ms/kiosk/min")
        emit("fleet_rss_per_kiosk", rss_per_kiosk, "KB")
        if args.fleet_pages:
            emit("fleet_page_ms", percentile(page_ms["all"], 50), "ms")
            emit("fleet_page_first_100_ms", percentile(page_ms["first"], 50), "ms")
        emit("fleet_visit_p99_ms", percentile(latencies, 99), "ms")
        ok = latencies and not failures and not errors and percentile(latencies, 99) <= args.fleet_p99_target_ms
        return 0 if ok else 1
    finally:
        for task in reporters:
            task.cancel()
        await fleet.close()
        await admin.close()
        server.stop()


def add_arguments(parser) -> None:
    group = parser.add_argument_group(NAME)
    group.add_argument("--fleet-kiosks", type=int, default=2000, help="kiosks connected and reporting (default 2000)")
    group.add_argument("--fleet-window-s", type=float, default=None,
                       help="seconds of each phase (health only; health and visits); default 90, 20 with --quick")
    group.add_argument("--fleet-visit-rate", type=float, default=5.0, help="visits per second (default 5)")
    group.add_argument("--fleet-page-every-s", type=float, default=5.0, help="fleet page load interval (default 5)")
    group.add_argument("--fleet-no-pages", dest="fleet_pages", action="store_false",
                       help="no fleet page loads in the visit phase (to compare)")
    group.add_argument("--fleet-p99-target-ms", type=float, default=50.0, help="visit p99 target (default 50)")


def run(args) -> int:
    if args.fleet_window_s is None:
        args.fleet_window_s = 20.0 if args.quick else 90.0
    if problems := kiosk_plan(args).problems():
        note(f"{NAME}: too few kiosks for --fleet-visit-rate {args.fleet_visit_rate:g}: {'; '.join(problems)}; "
             f"use --fleet-kiosks {kiosks_for(args.fleet_visit_rate)} or more")
        return 2
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-bench-fleet-",
                      keep=getattr(args, "keep_tmp", False))


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
