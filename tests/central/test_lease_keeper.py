"""The leader's lease is renewed from a thread of its own while its event loop shows it is alive
(central/cluster/keeper.py): a busy leader keeps its term, a hung one loses it and a standby takes over.
Real redis-server and PostgreSQL; the leader's event loop runs in a thread of its own so that the test can
stall it alone."""
from __future__ import annotations

import asyncio
import contextlib
import threading

import aiohttp
from aiohttp import web

from central.app import create_app
from central.cluster.keeper import HEARTBEAT_S, STALL_LIMIT_S, LeaseKeeper, LoopHeartbeat
from central.cluster.lease import LEASE_KEY, TTL_S, Lease
from central.config import Config
from central.rooms.redis_rooms import VISITS_KEY
from tests.central.central_processes import free_port
from tests.central.leadership_helpers import CentralInThread, seeded_database, until_status

DEPARTMENT = "buergerbuero"


async def beating(heartbeat: LoopHeartbeat) -> None:
    """What the leader's loop does while it runs."""
    while True:
        heartbeat.beat()
        await asyncio.sleep(HEARTBEAT_S)


class Ended(list):
    """What the keeper reports from its thread (the reasons, in order), and a way to wait for the first."""

    def __init__(self) -> None:
        super().__init__()
        self._reported = threading.Event()

    def __call__(self, why: str) -> None:
        self.append(why)
        self._reported.set()

    async def first(self, timeout: float = 10) -> str:
        assert await asyncio.to_thread(self._reported.wait, timeout), f"the term did not end within {timeout} s"
        return self[0]


async def test_the_keeper_holds_the_lease_while_the_loop_runs_and_stops_quietly(redis_client, redis_server):
    lease = Lease(redis_client, "a")  # the production ttl and renewal: 1.75 s of room for a late thread
    assert await lease.acquire()
    heartbeat, ended = LoopHeartbeat(), Ended()
    keeper = LeaseKeeper(lease, redis_server.url, heartbeat, ended)
    beats = asyncio.get_running_loop().create_task(beating(heartbeat))
    keeper.start()
    try:
        await asyncio.sleep(2 * lease.ttl_s)  # twice the ttl: only renewals keep it
        assert lease.held and ended == []
        assert await redis_client.get(LEASE_KEY) == lease.value.encode()
    finally:
        keeper.stop()
        await asyncio.to_thread(keeper.join, 5)
        beats.cancel()
    assert not keeper.is_alive() and ended == []  # a clean stop is no end of term to report


async def test_a_loop_stalled_past_the_limit_ends_the_term_and_hands_the_lease_back(redis_client, redis_server):
    lease = Lease(redis_client, "a")
    assert await lease.acquire()
    epoch, ended = lease.epoch, Ended()
    keeper = LeaseKeeper(lease, redis_server.url, LoopHeartbeat(), ended, stall_limit_s=0.5,
                         renew_every_s=0.25)  # nothing beats: the loop is hung
    keeper.start()
    why = await ended.first()
    assert why.startswith("event loop stalled "), why
    assert not lease.held
    assert await redis_client.get(LEASE_KEY) is None  # handed back: a standby need not wait out the ttl
    standby = Lease(redis_client, "b")
    assert await standby.acquire() and standby.epoch == epoch + 1


async def test_redis_out_of_reach_ends_the_term_before_the_lease_could_pass_on(redis_client):
    lease = Lease(redis_client, "a")
    assert await lease.acquire()
    heartbeat, ended = LoopHeartbeat(), Ended()
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    keeper = LeaseKeeper(lease, unreachable, heartbeat, ended)
    beats = asyncio.get_running_loop().create_task(beating(heartbeat))
    keeper.start()
    try:
        why = await ended.first(timeout=3 * TTL_S)
    finally:
        beats.cancel()
    assert why.startswith("Redis unreachable"), why
    assert not lease.held
    assert await redis_client.pttl(LEASE_KEY) > 0  # it gave up while the key still ran: never two leaders


@contextlib.asynccontextmanager
async def leader_and_standby(request, stall_limit_s: float):
    """A leader on a loop of its own and a standby on the test's loop, sharing PostgreSQL and Redis."""
    pg, redis = request.getfixturevalue("postgresql_server"), request.getfixturevalue("redis_server")
    database_url, credentials = await seeded_database(pg)

    def config() -> Config:
        return Config(database_url=database_url, redis_url=redis.url, secure_cookies=False,
                      lease_stall_limit_s=stall_limit_s)
    leader = CentralInThread(config())
    runner = None
    try:
        await leader.start()
        await until_status(leader.url, 200)
        runner = web.AppRunner(create_app(config()), shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        standby = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        await until_status(standby, 503)
        yield leader, runner.app, standby, credentials
    finally:
        if runner is not None:
            await runner.cleanup()
        await leader.stop()


async def waiting_kiosk(session: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientWebSocketResponse:
    kiosk = await session.ws_connect(url.replace("http", "ws") + "/ws/kiosk",
                                     headers={"Authorization": f"Bearer {token}"})
    assert (await kiosk.receive_json())["type"] == "welcome"
    await kiosk.send_json({"type": "visit.request", "department": DEPARTMENT})
    while (queued := await kiosk.receive_json(timeout=5))["type"] != "visit.queued":
        pass
    kiosk.visit_id = queued["visit_id"]
    return kiosk


async def test_a_leader_whose_loop_is_busy_for_seconds_keeps_its_term_and_its_kiosks(request, redis_client):
    async with leader_and_standby(request, stall_limit_s=STALL_LIMIT_S) as (leader, _, standby, credentials), \
            aiohttp.ClientSession() as session:
        kiosk = await waiting_kiosk(session, leader.url, credentials["kiosk_token"])
        epoch = leader.app["leadership"].epoch
        # Longer than the lease's ttl (a lease renewed by the loop would run out), shorter than the limit.
        busy = leader.keep_busy(TTL_S + 0.5)
        async with asyncio.timeout(30):
            while not busy.is_set():  # all through the busy spell ...
                async with session.get(standby + "/health/leader") as r:
                    assert r.status == 503, "a second central took over from a leader that was only busy"
                await asyncio.sleep(0.1)
        for _ in range(int(TTL_S / 0.1)):  # ... and for a lease's ttl after it
            async with session.get(standby + "/health/leader") as r:
                assert r.status == 503, "a second central took over from a leader that was only busy"
            await asyncio.sleep(0.1)
        async with session.get(leader.url + "/health/leader") as r:
            assert r.status == 200
        assert leader.app["leadership"].epoch == epoch and not leader.app["lost_lead"].is_set()
        assert (await redis_client.get(LEASE_KEY)).decode().startswith(f"{epoch}:")
        await kiosk.send_json({"type": "ping"})  # the kiosk was never disconnected
        while (answer := await kiosk.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            if answer.json()["type"] == "pong":
                break
        assert answer.type is aiohttp.WSMsgType.TEXT, answer


async def test_a_leader_whose_loop_hangs_past_the_limit_loses_its_term_and_a_standby_takes_over(
        request, redis_client, caplog):
    async with leader_and_standby(request, stall_limit_s=1.0) as (leader, standby_app, standby, credentials), \
            aiohttp.ClientSession() as session:
        kiosk = await waiting_kiosk(session, leader.url, credentials["kiosk_token"])
        async with asyncio.timeout(10):
            while True:  # written through before the hang
                if await redis_client.hexists(VISITS_KEY, kiosk.visit_id):
                    break
                await asyncio.sleep(0.05)
        epoch = leader.app["leadership"].epoch
        released = threading.Event()
        leader.hang(released, at_most=60)
        try:
            await until_status(standby, 200, timeout=20)  # bounded: the limit, the keeper's tick, the poll
        finally:
            released.set()
        assert standby_app["leadership"].epoch == epoch + 1
        assert standby_app["hub"].rooms.get(kiosk.visit_id) is not None  # the visit is there for the kiosk
        async with asyncio.timeout(10):  # the old leader, running again, steps down at once
            while (await kiosk.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert kiosk.close_code == aiohttp.WSCloseCode.SERVICE_RESTART  # reconnect: to the new leader
        assert leader.app["lost_lead"].is_set()
        async with session.get(leader.url + "/health/leader") as r:
            assert r.status == 503
        assert "stopped leading: event loop stalled" in caplog.text  # the journal says why the term ended
