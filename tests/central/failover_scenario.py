"""Two centrals behind HAProxy sharing PostgreSQL and Redis, citizens waiting and one in a call,
and the leader killed (SIGKILL) or stopped (SIGTERM): the scenario of tests/central/test_failover.py,
whose figures ``./build.sh bench --only failover`` prints (bench/failover.py).

Every server is real and started here on loopback; every wait has a timeout.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from central.rooms.redis_guest_links import LINKS_KEY
from central.seed import seed_demo
from central.storage import Database
from tests import servers
from tests.central.central_processes import (
    CentralProcess,
    Kiosk,
    Scene,
    one_in_a_call_and_others_waiting,
    waiting_ids,
)
from tests.polling import until

DEPARTMENT = "buergerbuero"
RECOVERY_TIMEOUT_S = 45.0
METRICS_TOKEN = "m" * 40


@dataclass
class Cluster:
    centrals: list[CentralProcess]
    haproxy: servers.HAProxy
    credentials: dict
    kiosk_tokens: list[str]
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.haproxy.url  # what kiosks and consoles connect to

    async def relayed(self, session: aiohttp.ClientSession, central: CentralProcess) -> int:
        """How many sockets ``central`` relays to the leader (its /metrics, asked directly)."""
        async with session.get(central.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as r:
            text = await r.text()
        return int(text.split("\namtsklingel_central_relayed_sockets ", 1)[1].split("\n", 1)[0])

    async def leader(self, session: aiohttp.ClientSession) -> CentralProcess:
        """The central whose /health/leader answers 200, asked directly (not through HAProxy)."""
        for central in self.centrals:
            if central.proc is not None and central.proc.poll() is None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(central.url + "/health/leader") as r:
                        if r.status == 200:
                            return central
        raise AssertionError("no central leads")


@contextlib.asynccontextmanager
async def cluster(tmp: Path, pg: servers.PostgreSQL, redis: servers.Redis, kiosks: int) -> AsyncIterator[Cluster]:
    """Two centrals (the first leads) and HAProxy in front, on a fresh database and an emptied Redis (one server,
    or Valkey under Sentinel: anything with the ``url`` central is configured with)."""
    from central.cluster import valkey_clients

    client, subscriber = valkey_clients.async_clients(redis.url)
    try:
        await client.flushdb()
    finally:
        await valkey_clients.aclose(client, subscriber)
    database_url = await pg.create_database()
    db = await Database.open(database_url)
    try:
        credentials = await seed_demo(db)
        tokens = [(await db.create_kiosk(f"Ort {i}"))[1] for i in range(kiosks)]
    finally:
        await db.close()
    extra = f'redis_url = "{redis.url}"\nmetrics_token = "{METRICS_TOKEN}"\n'
    centrals = [CentralProcess(tmp, name=f"central-{n}", database_url=database_url, extra=extra) for n in "ab"]
    haproxy = None
    try:
        async with aiohttp.ClientSession() as probe:
            await centrals[0].start(probe, "/health/leader", (200,))
            # Ready once it relays to the leader: before HAProxy starts, so its first checks find it so.
            await centrals[1].start(probe, "/health/ws", (200,))
            haproxy = await asyncio.to_thread(servers.start_haproxy, [("a", centrals[0].port),
                                                                      ("b", centrals[1].port)])
            await until_leading(probe, haproxy.url, 10)
            # HAProxy 2.6 counts every server up until its first checks fail (3.1 has init-state down):
            # wait until it sends pages only to the leader, and sockets to both (the standby relays them).
            await until(lambda: haproxy.servers_up() == {"a"} and haproxy.servers_up("sockets") == {"a", "b"},
                        10, what="HAProxy: pages to the leader, sockets to both centrals")
        yield Cluster(centrals, haproxy, credentials, tokens)
    finally:
        if haproxy is not None:
            haproxy.stop()
        for central in centrals:
            central.kill_if_running()
        await pg.drop_database(database_url.rsplit("/", 1)[1])


async def until_leading(session: aiohttp.ClientSession, url: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health/leader") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.02)


@dataclass
class Failover:
    """What one change of leader did to the citizens and the clerk."""

    signal: str
    returncode: int
    places_kept: int        # waiting citizens back in their own place (position and state), of ``waiting``
    waiting: int
    order_kept: bool        # the console's queue after the change lists every visit in the original order
    recovery_s: float       # stop/kill -> a console through HAProxy sees every waiting visit in its place
    leads_after_s: float    # stop/kill -> the standby's own /health/leader answers 200 (lease taken, rooms loaded)
    kiosks_back_s: float    # stop/kill -> the last kiosk has resumed through HAProxy
    call_given_back: bool   # the clerk's console got its running call back (call.assigned, resumed)
    call_resumed: bool      # the calling kiosk resumed in_call, without a new call.start
    ended: int              # visits that ended on the way (must be 0)
    relayed_before: int     # of the kiosks and the console, how many the standby relayed to the leader before
    closed_1012: int        # kiosks whose central closed them saying "reconnect" (1012) rather than just vanishing


async def set_the_scene(c: Cluster, session: aiohttp.ClientSession, waiting: int) -> Scene:
    """``waiting`` citizens in one waiting room, in a known order, and one citizen in a call."""
    return await one_in_a_call_and_others_waiting(c, session, c.credentials, c.kiosk_tokens[:waiting], DEPARTMENT)


async def fail_over(c: Cluster, session: aiohttp.ClientSession, scene: Scene, sig: signal.Signals) -> Failover:
    """Stop the leader with ``sig``; every kiosk and the console reconnect through HAProxy. Afterwards the
    stopped central is started again as a standby, as systemd would, ready for the next change."""
    leader = await c.leader(session)
    standby = next(central for central in c.centrals if central is not leader)
    relayed_before = await c.relayed(session, standby)
    everyone = [scene.calling, *scene.waiting]
    closed = asyncio.gather(*(k.closed(timeout=RECOVERY_TIMEOUT_S) for k in everyone))
    started = time.monotonic()
    returncode = await leader.stop(sig)
    close_codes = await closed
    await scene.clerk.ws.close()

    async def console_sees_everyone() -> tuple[float, bool, bool]:
        while True:  # HAProxy answers 503 until the standby leads; the console's login stays valid
            try:
                snapshot = await scene.clerk.connect()
            except (aiohttp.ClientError, AssertionError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            seen_at = time.monotonic() - started
            assigned = await scene.clerk.recv("call.assigned")
            return (seen_at, waiting_ids(snapshot, DEPARTMENT) == scene.order,
                    assigned["visit"]["visit_id"] == scene.calling.visit_id and assigned["resumed"] is True)

    async def kiosk_back(kiosk: Kiosk) -> dict:
        return await kiosk.resume_retrying(RECOVERY_TIMEOUT_S)

    async def standby_leads() -> float:
        await until_leading(session, standby.url, RECOVERY_TIMEOUT_S)
        return time.monotonic() - started

    async with asyncio.timeout(RECOVERY_TIMEOUT_S):
        leads_after_s, console, *resumed = await asyncio.gather(
            standby_leads(), console_sees_everyone(), *(kiosk_back(k) for k in everyone))
    kiosks_back_s = time.monotonic() - started
    recovery_s, order_kept, call_given_back = console
    places_kept = sum(r["state"] == "waiting" and r["position"] == place
                      for place, r in enumerate(resumed[1:], start=1))
    starts = [m for m in scene.calling.seen if m["type"] == "call.start"]
    ended = sum(m["type"] == "visit.ended" for k in everyone for m in k.seen)
    async with aiohttp.ClientSession() as probe:
        await leader.start(probe, "/health/ws", (200,))  # back, relaying to the new leader
    return Failover(sig.name, returncode, places_kept, len(scene.waiting), order_kept, recovery_s, leads_after_s,
                    kiosks_back_s,
                    call_given_back, resumed[0]["state"] == "in_call" and len(starts) == 1, ended, relayed_before,
                    sum(code == aiohttp.WSCloseCode.SERVICE_RESTART for code in close_codes))


async def hang_up(scene: Scene) -> str:
    """The clerk hangs up the call that went on through the changes; the reason the kiosk hears."""
    await scene.clerk.send(type="visit.hangup", visit_id=scene.calling.visit_id)
    return (await scene.calling.recv("visit.ended"))["reason"]


def client_session() -> aiohttp.ClientSession:
    """One session for many kiosks: aiohttp's default of 100 connections would queue the 101st socket."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


@dataclass
class GuestLinks:
    """Links the clerk made for the call before a change of leader (paths as the console shows them)."""

    unused: str   # handed out, not opened yet
    used: str     # opened by a guest, who joined
    revoked: str  # withdrawn by the clerk


async def three_guest_links(c: Cluster, session: aiohttp.ClientSession, scene: Scene, redis_url: str) -> GuestLinks:
    """The clerk of the call invites three guests: revokes one link, a guest opens another, the third waits.
    Returns once Redis holds what the leader wrote of them (only the unused link)."""
    from central.cluster import valkey_clients

    visit_id = scene.calling.visit_id

    async def invite(label: str) -> dict:
        await scene.clerk.send(type="guest.invite", visit_id=visit_id, role="interpreter", label=label)
        while True:
            status = await scene.clerk.recv("guest.status")
            if status["state"] == "invited" and status["link"]:
                return status

    revoked = await invite("Dolmetscher Arabisch")
    await scene.clerk.send(type="guest.remove", visit_id=visit_id, peer=revoked["peer"])
    unused, used = await invite("Dolmetscherin Türkisch"), await invite("Kollegin")
    assert await open_guest_link(c, session, used["link"]) == "guest.welcome"
    client, subscriber = valkey_clients.async_clients(redis_url)  # one Redis, or the master the sentinels name
    try:
        async with asyncio.timeout(10):
            while True:  # written through (the leader writes within milliseconds of a change)
                if await client.hlen(LINKS_KEY) == 1:
                    break
                await asyncio.sleep(0.05)
    finally:
        await valkey_clients.aclose(client, subscriber)
    return GuestLinks(unused["link"], used["link"], revoked["link"])


async def open_guest_link(c: Cluster, session: aiohttp.ClientSession, path: str) -> str:
    """An interpreter opens ``path`` through HAProxy: central's first answer (guest.welcome or guest.refused).
    A guest let in stays connected (the socket is kept open with the session)."""
    ws = await session.ws_connect(c.url.replace("http", "ws") + "/ws/guest", headers={"Origin": c.url})
    await ws.send_str(json.dumps({"type": "guest.hello", "link": path.split("#", 1)[1]}))
    frame = await ws.receive(timeout=5)
    assert frame.type == aiohttp.WSMsgType.TEXT, frame
    return json.loads(frame.data)["type"]
