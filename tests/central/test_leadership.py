"""One central leads, the others stand by: the lease in a real Redis, fenced writes of the rooms, and
what HAProxy and clients see of two centrals sharing PostgreSQL and Redis (in one test process).
The failover of real processes behind HAProxy is tests/central/test_failover.py."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from central.app import create_app
from central.cluster.leadership import stop_task
from central.cluster.lease import LEASE_KEY, Lease
from central.cluster.web import STANDBY_CLOSE_CODE
from central.config import Config
from central.rooms import Visit
from central.rooms.redis_rooms import Fenced, RedisRooms
from central.seed import seed_demo
from central.storage import Database
from tests.central.leadership_helpers import METRICS_TOKEN, two_centrals, until_status
from tests.central.test_metrics import promtool


async def test_one_central_holds_the_lease_and_each_takeover_raises_the_epoch(redis_client):
    a, b = Lease(redis_client, "a", ttl_s=0.6), Lease(redis_client, "b", ttl_s=0.6)
    assert await a.acquire() and a.held
    assert not await b.acquire() and not b.held
    assert await a.renew()
    first = a.epoch
    await asyncio.sleep(0.7)  # a stops renewing (killed, or cut off from Redis)
    assert not a.held  # it stopped counting itself as leader before Redis let the key go
    assert await b.acquire() and b.epoch == first + 1
    assert not await a.renew() and a.value is None  # it cannot take it back by renewing
    await b.release()
    assert await a.acquire() and a.epoch == first + 2  # handed back: no need to wait for the ttl


async def test_a_central_that_lost_the_lease_cannot_write_the_rooms(redis_client):
    old, new = Lease(redis_client, "old", ttl_s=0.3), Lease(redis_client, "new", ttl_s=5)
    assert await old.acquire()
    fenced = []
    rooms = RedisRooms(redis_client, 60, lease=lambda: (old.key, old.value or ""), on_fenced=lambda: fenced.append(1))
    writer = asyncio.get_running_loop().create_task(rooms.run())
    rooms.add(Visit(kiosk_id=1, kiosk_location="Ort 1", department="buergerbuero", language="de"))
    await asyncio.sleep(0.4)
    assert await new.acquire()
    rooms.add(Visit(kiosk_id=2, kiosk_location="Ort 2", department="buergerbuero", language="de"))
    async with asyncio.timeout(5):
        await writer  # the refused write ends the writer and tells the central
    assert fenced == [1]
    with pytest.raises(Fenced):
        await rooms.flush()
    standby = RedisRooms(redis_client, 60)
    assert await standby.load() == 1  # only what was written while the lease was the old central's


async def test_a_writer_stopped_in_the_middle_of_a_write_stops_at_once(redis_client):
    """A clean stop cancels the rooms' writer. A cancel that reaches it inside redis-py's send, as the send
    finishes, is lost on Python 3.11 (asyncio.wait_for): the writer must stop all the same, not wait for its
    next renewal (a quarter of the resume grace) while the lease runs out."""
    lease = Lease(redis_client, "a", ttl_s=30)
    assert await lease.acquire()
    rooms = RedisRooms(redis_client, 120, lease=lambda: (lease.key, lease.value or ""))
    writer = asyncio.get_running_loop().create_task(rooms.run())
    await asyncio.sleep(0.3)  # the first full write is done; the writer waits for changes
    rooms.add(Visit(kiosk_id=1, kiosk_location="Ort 1", department="buergerbuero", language="de"))
    await asyncio.sleep(0)  # the change wakes the writer, which starts sending it ...
    async with asyncio.timeout(2):
        await stop_task(writer)  # ... when the stop comes
    assert writer.done()


async def test_the_standby_relays_kiosks_to_the_leader_until_it_stops_then_holds_their_visits(request, redis_client):
    pg = request.getfixturevalue("postgresql_server")
    database_url = await pg.create_database()
    redis_url = request.getfixturevalue("redis_server").url
    db = await Database.open(database_url)
    try:
        credentials = await seed_demo(db)
    finally:
        await db.close()
    async with two_centrals(database_url, redis_url) as (runners, (leader, standby)):
        async with aiohttp.ClientSession() as session:
            async with session.get(standby + "/health/leader") as r:
                assert r.status == 503 and await r.text() == "standby\n"
            for url, leading in ((leader, 1), (standby, 0)):  # for Prometheus, which scrapes each one
                async with session.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as r:
                    page = await r.text()
                assert f"\namtsklingel_central_leader {leading}\n" in page
                checked = promtool("check", "metrics", stdin=page)
                assert checked.returncode == 0, checked.stdout + checked.stderr
                # The kiosks and rooms only on the leader's page: a standby's would say every kiosk is down.
                fleet = ("\namtsklingel_kiosk_up{", "\namtsklingel_department_waiting_visits{")
                assert all((family in page) == bool(leading) for family in fleet), page
            await until_status(standby, 200, timeout=5, path="/health/ws")  # it relays to the leader
            auth = {"Authorization": f"Bearer {credentials['kiosk_token']}"}
            kiosk = await session.ws_connect(standby.replace("http", "ws") + "/ws/kiosk", headers=auth)
            assert (await kiosk.receive_json())["type"] == "welcome"
            await kiosk.send_json({"type": "visit.request", "department": "buergerbuero"})
            while (queued := await kiosk.receive_json(timeout=5))["type"] == "kiosk.settings":
                pass
            assert queued["type"] == "visit.queued", queued
            assert runners[0].app["hub"].rooms.get(queued["visit_id"]) is not None  # the leader holds it
            assert not runners[1].app["hub"].rooms.all()  # the standby holds nothing

            await runners[0].cleanup()  # a clean stop hands the lease over at once
            async with asyncio.timeout(5):
                while (frame := await kiosk.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert frame.type is aiohttp.WSMsgType.CLOSE, frame
            assert frame.data == aiohttp.WSCloseCode.SERVICE_RESTART  # reconnect, to whoever leads now
            await until_status(standby, 200, timeout=5)
            assert runners[1].app["leadership"].epoch == runners[0].app["leadership"].epoch + 1
            visit = runners[1].app["hub"].rooms.get(queued["visit_id"])
            assert visit is not None and visit.kiosk_id is not None  # in its place before the kiosk is back
            kiosk = await session.ws_connect(standby.replace("http", "ws") + "/ws/kiosk", headers=auth)
            assert (await kiosk.receive_json())["type"] == "welcome"
            await kiosk.send_json({"type": "visit.resume", "visit_id": queued["visit_id"],
                                   "resume_token": queued["resume_token"]})
            while (resumed := await kiosk.receive_json(timeout=5))["type"] == "kiosk.settings":
                pass
            assert resumed["state"] == "waiting" and resumed["position"] == 1


async def test_one_central_on_its_own_always_leads(central):
    async with central.session.get(central.url + "/health/leader") as r:
        assert r.status == 200 and await r.text() == "leader\n"
    kiosk = await central.kiosk()  # and takes kiosks, as ever
    await kiosk.send(type="ping")
    assert (await kiosk.recv("pong"))["type"] == "pong"


async def test_a_leader_that_loses_its_lease_stops_serving_at_once(request, redis_client):
    pg = request.getfixturevalue("postgresql_server")
    database_url = await pg.create_database()
    db = await Database.open(database_url)
    try:
        credentials = await seed_demo(db)
    finally:
        await db.close()
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (runners, (leader, _)):
        app = runners[0].app
        async with aiohttp.ClientSession() as session:
            kiosk = await session.ws_connect(leader.replace("http", "ws") + "/ws/kiosk",
                                             headers={"Authorization": f"Bearer {credentials['kiosk_token']}"})
            assert (await kiosk.receive_json())["type"] == "welcome"
            # Someone else holds the key now (the leader was cut off from Redis past its ttl, say).
            await redis_client.set(LEASE_KEY, "99:elsewhere", px=60_000)
            async with asyncio.timeout(5):
                while (await kiosk.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert kiosk.close_code == aiohttp.WSCloseCode.SERVICE_RESTART  # reconnect: to whoever leads now
            assert app["lost_lead"].is_set()  # python -m central serve exits (75) and comes back as a standby
            async with session.get(leader + "/health/leader") as r:
                assert r.status == 503


async def test_a_central_stands_by_while_redis_would_save_visits_to_disk(request, redis_client, caplog):
    pg = request.getfixturevalue("postgresql_server")
    database_url = await pg.create_database()
    await redis_client.config_set("appendonly", "yes")
    try:
        app = create_app(Config(database_url=database_url, redis_url=request.getfixturevalue("redis_server").url,
                                secure_cookies=False))
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            with pytest.raises(TimeoutError):
                await until_status(url, 200, timeout=1.5)
            assert "saves its data to disk (appendonly yes)" in caplog.text
            async with aiohttp.ClientSession() as session:  # nobody leads: nothing to serve or relay to
                refused = await session.ws_connect(url.replace("http", "ws") + "/ws/kiosk",
                                                   headers={"Authorization": "Bearer whatever"})
                assert (await refused.receive()).type is aiohttp.WSMsgType.CLOSE
                assert refused.close_code == STANDBY_CLOSE_CODE
            await redis_client.config_set("appendonly", "no")
            await until_status(url, 200, timeout=10)  # set right: it leads
        finally:
            await runner.cleanup()
    finally:
        await redis_client.config_set("appendonly", "no")
