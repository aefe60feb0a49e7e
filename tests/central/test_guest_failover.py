"""Two real centrals behind a real HAProxy, sharing a real PostgreSQL and Redis: a citizen visiting from home
is in a call with a clerk and an interpreter who joined by link. The leader is killed (SIGKILL), later the new
leader is stopped (SIGTERM). Each time the three sockets close, and each client comes back through HAProxy as
its page does: the visitor resumes the call with its resume token, the console gets it back, and the
interpreter rejoins with the key of their last guest.welcome. The pair between the visitor and the interpreter
starts afresh and signals through whichever centrals they landed on; after the hang-up Redis holds nothing of
the guest (central/live/guest_rejoin.py, docs/decisions/0008-several-centrals.md)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import signal

import aiohttp

from appliance.call.backoff import Backoff
from central.rooms.redis_guest_links import GUESTS_KEY
from tests.central.central_processes import Console, JsonSocket
from tests.central.failover_scenario import DEPARTMENT, RECOVERY_TIMEOUT_S, Cluster, client_session, cluster

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class Socket(JsonSocket):
    """A page's WebSocket through HAProxy (a visitor's ``/ws/visit`` or a guest's ``/ws/guest``)."""

    def __init__(self, c: Cluster, session: aiohttp.ClientSession, path: str):
        self.c, self.session, self.path = c, session, path
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.c.url.replace("http", "ws") + self.path,
                                                headers={"Origin": self.c.url})

    async def closed(self) -> None:
        """Read on until central closes the socket or the connection is lost (the leader went)."""
        async with asyncio.timeout(RECOVERY_TIMEOUT_S):
            while (await self.ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass

    async def back(self, first: dict, answer: str) -> dict:
        """Reconnect with the pages' back-off until a central takes ``first`` and answers ``answer``."""
        backoff = Backoff()
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self.connect()
                if self.path == "/ws/visit":
                    await self.recv("welcome")
                await self.send(**first)
                return await self.recv(answer)
            except (aiohttp.ClientError, AssertionError, TimeoutError):
                if self.ws is not None:
                    await self.ws.close()


async def console_back(clerk: Console) -> dict:
    backoff = Backoff()
    while True:
        await asyncio.sleep(backoff.next_delay())
        with contextlib.suppress(aiohttp.ClientError, AssertionError, TimeoutError):
            await clerk.connect()
            return await clerk.recv("call.assigned")


async def written_through(redis_url: str, state: str) -> None:
    """Redis holds the one guest of the call, in ``state`` (or holds no guest, for None)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while True:  # the leader writes within milliseconds of a change
                stored = [json.loads(v)["state"] for v in (await client.hgetall(GUESTS_KEY)).values()]
                if stored == ([state] if state else []):
                    return
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_a_guest_and_a_visitor_from_home_stay_in_their_call_when_the_leader_changes(request, tmp_path):
    pg, redis = request.getfixturevalue("postgresql_server"), request.getfixturevalue("redis_server")
    async with cluster(tmp_path, pg, redis, 0) as c, client_session() as session:
        visitor, guest = Socket(c, session, "/ws/visit"), Socket(c, session, "/ws/guest")
        clerk = Console(c, "sachbearbeiterin", c.credentials["clerk_password"])
        await visitor.connect()
        await visitor.recv("welcome")
        await visitor.send(type="visit.request", department=DEPARTMENT, language="uk")
        visit_id = (await visitor.recv("visit.queued"))["visit_id"]
        await clerk.login()
        await clerk.connect()
        await clerk.send(type="visit.pickup", visit_id=visit_id)
        await clerk.recv("call.assigned")
        token = (await visitor.recv("call.start"))["resume_token"]
        await visitor.send(type="rtc.state", visit_id=visit_id, state="connected")

        await clerk.send(type="guest.invite", visit_id=visit_id, role="interpreter", label="Перекладачка")
        status = await clerk.recv("guest.status")
        await guest.connect()
        await guest.send(type="guest.hello", link=status["link"].split("#", 1)[1])
        welcome = await guest.recv("guest.welcome")
        g = welcome["peer"]
        await guest.send(type="guest.ready", visit_id=visit_id)
        await written_through(redis.url, "waiting")
        await clerk.send(type="guest.admit", visit_id=visit_id, peer=g)
        await guest.recv("guest.admitted")
        assert (await visitor.recv("call.participant_joined"))["peer"] == g
        await written_through(redis.url, "in_call")

        for sig in (signal.SIGKILL, signal.SIGTERM):
            leader = await c.leader(session)
            await leader.stop(sig)
            async with asyncio.timeout(RECOVERY_TIMEOUT_S):
                await asyncio.gather(visitor.closed(), guest.closed())
                await clerk.ws.close()
                resumed, assigned, welcome = await asyncio.gather(
                    visitor.back({"type": "visit.resume", "visit_id": visit_id, "resume_token": token},
                                 "visit.resumed"),
                    console_back(clerk),
                    guest.back({"type": "guest.rejoin", "key": welcome["rejoin"]}, "guest.welcome"))
            assert (resumed["state"], assigned["visit"]["visit_id"], assigned["resumed"]) == ("in_call", visit_id, True)
            assert (welcome["visit_id"], welcome["peer"], welcome["label"]) == (visit_id, g, "Перекладачка")
            token = resumed["resume_token"]
            await guest.recv("guest.admitted")
            # Whoever came back first: each pair with the interpreter starts afresh once both ends are there.
            assert (await visitor.recv("call.participant_joined", timeout=10))["peer"] == g
            assert (await clerk.recv("call.participant_joined", timeout=10))["peer"] == g
            await visitor.send(type="rtc.offer", visit_id=visit_id, peer=g, sdp=SDP)
            assert (await guest.recv("rtc.offer"))["peer"] == "citizen"
            await guest.send(type="rtc.answer", visit_id=visit_id, peer="citizen", sdp=SDP)
            assert (await visitor.recv("rtc.answer"))["peer"] == g
            await clerk.send(type="rtc.offer", visit_id=visit_id, peer=g, sdp=SDP)
            assert (await guest.recv("rtc.offer"))["peer"] == "clerk"
            async with aiohttp.ClientSession() as probe:
                await leader.start(probe, "/health/ws", (200,))  # back as a standby, as systemd would

        await clerk.send(type="visit.hangup", visit_id=visit_id)
        assert (await visitor.recv("visit.ended"))["reason"] == "hangup_staff"
        assert (await guest.recv("visit.ended"))["reason"] == "hangup_staff"
        await written_through(redis.url, None)  # nothing of the guest is kept after the call
        await clerk.close()
    for central in c.centrals:
        log = central.log.read_text()
        assert "Traceback" not in log, f"{central.name}:\n" + log[max(0, log.find("Traceback") - 2000):]
