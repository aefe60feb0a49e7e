"""Central under faults: a storm of wrong logins, and a restart while 100 citizens wait.

Login storm
-----------
Central runs as its own process (temporary SQLite database, 127.0.0.1, with 127.0.0.1
as a trusted proxy so that a client can claim an address in X-Forwarded-For). One kiosk
is connected. First a quiet phase, then ``--storm-workers`` (16) clients post wrong
passwords to ``/login`` as fast as central answers them, for ``--storm-s`` seconds each
in two ways: from one address (half against the demo clerk's name, half against made-up
names: the throttle answers most without checking a password), and spread over a fresh
address and a fresh name for every attempt (a botnet: nearly every attempt costs an
argon2 verification). Meanwhile a prober asks ``GET /api/status`` and the kiosk sends
``ping`` every 20 ms; the p95 of each round trip is the figure (target: 50 ms or less).
The reported ``login_storm_*_p95_ms`` are the worse of the two ways; how each storm was
answered (401 wrong password, 429 throttled, 503 busy) is printed too.

Restart
-------
``--kiosks`` (100) kiosks each join the waiting room of one department, one after the
other, so their order is known. Central is then stopped twice: once with SIGTERM (a
planned restart), once with SIGKILL (a crash), and started again on the same port and
database. The kiosks behave as the appliance does: on a closed connection they reconnect
with the appliance's own back-off (``appliance/call/backoff.py``; each restart waits until
the fleet's connections count as healthy, so the waits start small as they would in the
field) and send ``visit.resume`` with the last resume token central gave them. A kiosk
counts as in its place when, on a connection opened after the restart, its latest
position (from ``visit.resumed`` or ``visit.position``) is the one it had before.
``restart_recovery_s`` runs from the moment central answers HTTP again to the moment the
last kiosk is confirmed in its place. Finally a clerk's console is opened and its
snapshot must list the visits in their original order (``restart_order_kept``). The
reported figures are the worse of the two restarts.

Nothing leaves loopback; every wait has a timeout; every loop is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import aiohttp

from appliance.call.backoff import HEALTHY_S, Backoff
from bench._central import DEPARTMENT, Server, add_kiosks_and_clerks, login
from bench._common import BenchError, emit, note, percentile, run_in_tmp
from bench._limits import KioskPlan, RateLimited

NAME = "resilience"
PROBE_EVERY_S = 0.02
QUIET_S = 3.0
RECOVERY_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 10.0
KILL_WAIT_S = 15.0


# -- login storm ---------------------------------------------------------------

async def _probe(session: aiohttp.ClientSession, url: str, ws: aiohttp.ClientWebSocketResponse,
                 pongs: asyncio.Queue, until: float, status_ms: list[float], ping_ms: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        t = perf_counter()
        async with session.get(url + "/api/status") as r:
            await r.read()
            if r.status != 200:
                raise BenchError(f"/api/status answered {r.status}")
        status_ms.append((perf_counter() - t) * 1000)
        t = perf_counter()
        await ws.send_str(json.dumps({"v": 1, "type": "ping"}))
        async with asyncio.timeout(10):
            await pongs.get()
        ping_ms.append((perf_counter() - t) * 1000)
        await asyncio.sleep(PROBE_EVERY_S)


async def _read_pongs(ws: aiohttp.ClientWebSocketResponse, pongs: asyncio.Queue) -> None:
    async for frame in ws:
        if frame.type == aiohttp.WSMsgType.TEXT and json.loads(frame.data).get("type") == "pong":
            pongs.put_nowait(None)


async def _storm_worker(url: str, number: int, clerk: str, until: float, answers: Counter, spread: bool) -> None:
    loop = asyncio.get_running_loop()
    attempt = 0
    while loop.time() < until:
        attempt += 1
        if spread:  # a fresh (documentation-range) address and name every time
            name, headers = f"nobody-{number}-{attempt}", {"X-Forwarded-For": f"198.18.{number}.{attempt % 250 + 1}"}
        else:
            name, headers = (clerk if number % 2 == 0 else f"nobody-{number}-{attempt}"), None
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=30)) as session:
            try:
                answers[await login(session, url, name, "wrong password 123", headers)] += 1
            except (aiohttp.ClientError, TimeoutError, BenchError) as exc:
                answers[type(exc).__name__] += 1


async def login_storm(server: Server, credentials: dict, args) -> None:
    worst_status = worst_ping = 0.0
    for spread in (False, True):
        status, ping = await _one_storm(server, credentials, args, spread)
        worst_status, worst_ping = max(worst_status, status), max(worst_ping, ping)
    emit("login_storm_status_p95_ms", worst_status, "ms")
    emit("login_storm_ping_p95_ms", worst_ping, "ms")


async def _one_storm(server: Server, credentials: dict, args, spread: bool) -> tuple[float, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        ws = await session.ws_connect(server.url.replace("http", "ws", 1) + "/ws/kiosk",
                                      headers={"Authorization": f"Bearer {credentials['kiosk_token']}"})
        pongs: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(_read_pongs(ws, pongs))
        loop = asyncio.get_running_loop()
        quiet_status: list[float] = []
        quiet_ping: list[float] = []
        await _probe(session, server.url, ws, pongs, loop.time() + QUIET_S, quiet_status, quiet_ping)
        storm_status: list[float] = []
        storm_ping: list[float] = []
        answers: Counter = Counter()
        until = loop.time() + args.storm_s
        workers = [asyncio.create_task(_storm_worker(server.url, i, credentials["clerk_user"], until, answers,
                                                     spread)) for i in range(args.storm_workers)]
        await asyncio.sleep(0.5)  # the storm is under way before the first probe
        await _probe(session, server.url, ws, pongs, until, storm_status, storm_ping)
        await asyncio.gather(*workers)
        reader.cancel()
        await ws.close()
    quiet_status.sort(), quiet_ping.sort(), storm_status.sort(), storm_ping.sort()
    attempts = sum(answers.values())
    way = "spread over addresses" if spread else "from one address"
    note(f"login storm {way}: {args.storm_workers} clients, {args.storm_s:.0f} s, {attempts} attempts "
         f"({attempts / args.storm_s:.1f}/s), answers {dict(answers)}")
    note(f"  /api/status p50/p95/max: quiet {percentile(quiet_status, 50):.1f}/{percentile(quiet_status, 95):.1f}/"
         f"{quiet_status[-1]:.1f} ms, storm {percentile(storm_status, 50):.1f}/{percentile(storm_status, 95):.1f}/"
         f"{storm_status[-1]:.1f} ms ({len(storm_status)} probes)")
    note(f"  kiosk ping p50/p95/max:  quiet {percentile(quiet_ping, 50):.1f}/{percentile(quiet_ping, 95):.1f}/"
         f"{quiet_ping[-1]:.1f} ms, storm {percentile(storm_ping, 50):.1f}/{percentile(storm_ping, 95):.1f}/"
         f"{storm_ping[-1]:.1f} ms")
    suffix = "spread" if spread else "one_address"
    emit(f"login_storm_{suffix}_status_p95_ms", percentile(storm_status, 95), "ms")
    emit(f"login_storm_{suffix}_ping_p95_ms", percentile(storm_ping, 95), "ms")
    emit(f"login_storm_{suffix}_status_quiet_p95_ms", percentile(quiet_status, 95), "ms")
    emit(f"login_storm_{suffix}_attempts_per_s", attempts / args.storm_s, "1/s")
    emit(f"login_storm_{suffix}_passwords_checked_per_s", answers[401] / args.storm_s, "1/s")
    return percentile(storm_status, 95), percentile(storm_ping, 95)


# -- restart -------------------------------------------------------------------

@dataclass(eq=False)
class WaitingKiosk:
    """A kiosk as the appliance behaves towards central: join once, resume after every drop."""
    token: str
    url: str
    session: aiohttp.ClientSession
    visit_id: str | None = None
    resume_token: str | None = None
    position: int | None = None
    original: int | None = None
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: Counter = field(default_factory=Counter)
    connects: int = 0
    connects_before: int = 0  # confirmations count only on a connection opened after the restart
    connected_at: float = 0.0

    async def run(self, joined: asyncio.Event) -> None:
        backoff = Backoff()  # the appliance's own waits (appliance/call/backoff.py)
        while True:
            try:
                ws = await self.session.ws_connect(self.url, headers={"Authorization": f"Bearer {self.token}"})
            except (aiohttp.ClientError, OSError) as exc:
                if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status == 429:
                    self.errors["connect:rate_limited"] += 1  # KIOSK_CONNECTS; the round stops on it
                await asyncio.sleep(backoff.next_delay())
                continue
            self.connects += 1
            self.connected_at = perf_counter()
            try:
                await self._talk(ws, joined)
            finally:
                await ws.close()
            # The appliance backs off after every close, also one of an open connection.
            backoff.connection_closed(perf_counter() - self.connected_at)
            await asyncio.sleep(backoff.next_delay())

    async def _talk(self, ws: aiohttp.ClientWebSocketResponse, joined: asyncio.Event) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                return
            msg = json.loads(frame.data)
            kind = msg["type"]
            if kind == "welcome":
                if self.visit_id is None:
                    await ws.send_str(json.dumps({"v": 1, "type": "visit.request", "department": DEPARTMENT}))
                else:
                    await ws.send_str(json.dumps({"v": 1, "type": "visit.resume", "visit_id": self.visit_id,
                                                  "resume_token": self.resume_token}))
            elif kind in ("visit.queued", "visit.resumed", "visit.position"):
                if kind == "visit.queued":
                    self.visit_id = msg["visit_id"]
                    joined.set()
                self.resume_token = msg.get("resume_token", self.resume_token)
                self.position = msg.get("position", self.position)
                if (self.original is not None and self.position == self.original and kind != "visit.queued"
                        and self.connects > self.connects_before):
                    self.confirmed.set()
            elif kind in ("error", "visit.ended", "visit.refused"):
                self.errors[f"{kind}:{msg.get('code') or msg.get('reason')}"] += 1


async def _restart_round(server: Server, kiosks: list[WaitingKiosk], sig: signal.Signals) -> tuple[int, float]:
    # Each restart meets a settled fleet: connections up long enough that the appliance's
    # back-off starts small again (a second restart within a minute would meet longer waits).
    settled = max(k.connected_at for k in kiosks) + HEALTHY_S
    if (wait := settled - perf_counter()) > 0:
        note(f"waiting {wait:.0f} s until every kiosk's connection counts as healthy")
        await asyncio.sleep(wait)
    for kiosk in kiosks:
        kiosk.original, kiosk.confirmed, kiosk.connects_before = kiosk.position, asyncio.Event(), kiosk.connects
    stopping = perf_counter()
    server.proc.send_signal(sig)
    try:
        await asyncio.to_thread(server.proc.wait, KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        note(f"central did not stop within {KILL_WAIT_S:.0f} s of {sig.name}; killing it")
        server.proc.kill()
        await asyncio.to_thread(server.proc.wait, KILL_WAIT_S)
    if sig is signal.SIGTERM:
        emit("restart_term_stop_s", perf_counter() - stopping, "s")
    server.start()
    async with aiohttp.ClientSession() as session:
        await server.wait_ready(session)
    ready = perf_counter()
    try:
        async with asyncio.timeout(RECOVERY_TIMEOUT_S):
            await asyncio.gather(*(k.confirmed.wait() for k in kiosks))
    except TimeoutError:
        pass
    kept = sum(k.confirmed.is_set() for k in kiosks)
    return kept, perf_counter() - ready


async def _console_order(server: Server, credentials: dict) -> list[str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        if (status := await login(session, server.url, credentials["clerk_user"],
                                  credentials["clerk_password"])) != 302:
            raise BenchError(f"clerk login failed: {status}")
        ws = await session.ws_connect(server.url.replace("http", "ws", 1) + "/ws/staff",
                                      headers={"Origin": server.url})
        async with asyncio.timeout(10):
            async for frame in ws:
                msg = json.loads(frame.data)
                if msg["type"] == "console.snapshot":
                    await ws.close()
                    queue = next(d for d in msg["departments"] if d["slug"] == DEPARTMENT)
                    return [v["visit_id"] for v in queue["waiting"]]
    raise BenchError("the console got no snapshot")


async def restart(server: Server, credentials: dict, tokens: list[str]) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        ws_url = server.url.replace("http", "ws", 1) + "/ws/kiosk"
        kiosks = [WaitingKiosk(t, ws_url, session) for t in tokens]
        tasks = []
        for kiosk in kiosks:  # one after the other: the order of arrival is the list's order
            joined = asyncio.Event()
            tasks.append(asyncio.create_task(kiosk.run(joined)))
            async with asyncio.timeout(JOIN_TIMEOUT_S):
                await joined.wait()
        if [k.position for k in kiosks] != list(range(1, len(kiosks) + 1)):
            raise BenchError(f"positions before the restart are not 1..{len(kiosks)}")
        order = [k.visit_id for k in kiosks]
        results = {}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            kept, recovery = await _restart_round(server, kiosks, sig)
            snapshot = await _console_order(server, credentials)
            results[sig.name] = (kept, int(snapshot == order), recovery)
            errors = sum((k.errors for k in kiosks), Counter())
            note(f"restart by {sig.name}: {kept}/{len(kiosks)} in place in {recovery:.2f} s after central "
                 f"answered; console order {'kept' if snapshot == order else 'CHANGED'}; "
                 f"kiosk connections {sum(k.connects for k in kiosks)}; errors {dict(errors) or 'none'}")
            if limited := [e for e in errors if e.endswith("rate_limited")]:
                raise RateLimited("a kiosk's reconnection" if "connect:rate_limited" in limited else "a visit request",
                                  f"{sum(errors[e] for e in limited)} times")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    emit("restart_places_kept", min(r[0] for r in results.values()), "count")
    emit("restart_order_kept", min(r[1] for r in results.values()), "bool")
    emit("restart_recovery_s", max(r[2] for r in results.values()), "s")
    for name, (_kept, _ordered, recovery) in results.items():
        emit(f"restart_{name.lower()}_recovery_s", recovery, "s")


# -- running -------------------------------------------------------------------

async def _run(args, tmp: Path) -> int:
    server = Server(tmp, extra_config='trusted_proxies = ["127.0.0.1"]\n')
    credentials = server.demo_data()
    tokens, _ = await add_kiosks_and_clerks(server.database_url, args.restart_kiosks - 1, 0)
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        note(f"central pid {server.pid} on {server.url}; {os.cpu_count()} CPUs")
        await login_storm(server, credentials, args)
        await restart(server, credentials, [credentials["kiosk_token"], *tokens])
    finally:
        server.stop()
    problems = [p for p in server.log_problems(headline_only=True)]
    if problems:
        note("central logged:\n  " + "\n  ".join(problems[:20]))
    return 0


def kiosk_plan(args) -> KioskPlan:
    """Each waiting kiosk asks for one visit, once; after a restart it resumes (not a new request). It
    connects once to each central process (a refused attempt while central is down never reaches it); the
    demo kiosk twice to the first, as the storm's pinging kiosk and then as a waiting one."""
    return KioskPlan(visit_requests_per_s=0.0, visit_burst=1, connects_per_s=0.0, connect_burst=2)


def add_arguments(parser) -> None:
    group = parser.add_argument_group("resilience")
    group.add_argument("--storm-workers", type=int, default=16, help="parallel wrong-login clients (default 16)")
    group.add_argument("--storm-s", type=float, default=10.0, help="length of the login storm (default 10 s)")
    group.add_argument("--restart-kiosks", type=int, default=100, help="waiting kiosks at the restart (default 100)")


def run(args) -> int:
    if args.storm_workers < 1 or args.storm_s <= 0 or args.restart_kiosks < 1:
        raise SystemExit("--storm-workers, --storm-s and --restart-kiosks must be positive")
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-resilience-")

