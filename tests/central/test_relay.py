"""A kiosk on one central and its clerk on another: the central that does not lead (an edge) relays its
sockets to the leader's hub through a real Redis, frame by frame, in order (central/cluster/edge.py,
central/cluster/remote_peers.py, docs/decisions/0008-several-centrals.md). Two centrals in this test
process sharing a real PostgreSQL and Redis; the failover of real processes behind HAProxy, with kiosks
spread over both, is tests/central/test_failover.py."""
from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from central import passwords
from central.cluster import envelope as e
from central.cluster.bus import bundle
from central.live.limits import CALL_SDP, HOME_OPEN_PER_ADDRESS, KIOSK_CONNECTS
from central.storage import Database
from protocol.codec import MAX_FRAME_BYTES
from tests import servers
from tests.central.conftest import Peer
from tests.central.guest_calls import admitted_guest, call_in_progress
from tests.central.home_client import home
from tests.central.leadership_helpers import seeded_database, two_centrals, until_status

DEPARTMENT, OTHER = "buergerbuero", "standesamt"
CANDIDATES = [{"candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {54400 + n} typ host", "sdpMid": "0",
               "sdpMLineIndex": 0} for n in range(3)]
OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=kiosk\r\nt=0 0\r\n"
ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=clerk\r\nt=0 0\r\n"


async def kiosk(url: str, session: aiohttp.ClientSession, token: str) -> Peer:
    ws = await session.ws_connect(url.replace("http", "ws") + "/ws/kiosk", headers={"Authorization": f"Bearer {token}"})
    peer = Peer(ws)
    assert (await peer.recv())["type"] == "welcome"
    return peer


async def clerk(url: str, username: str, password: str) -> Peer:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(url + "/login") as r:
        csrf = (await r.text()).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with session.post(url + "/login", data={"username": username, "password": password, "csrf_token": csrf},
                            allow_redirects=False) as r:
        assert r.status == 302
    ws = await session.ws_connect(url.replace("http", "ws") + "/ws/staff", headers={"Origin": url})
    peer = Peer(ws)
    peer.session = session  # type: ignore[attr-defined]
    assert (await peer.recv())["type"] == "console.snapshot"
    return peer


async def closed(peer: Peer) -> aiohttp.WSMessage:
    """The closing frame central sends (what the appliance and the console reconnect on)."""
    while (frame := await peer.ws.receive()).type is aiohttp.WSMsgType.TEXT:
        pass
    assert frame.type is aiohttp.WSMsgType.CLOSE, frame
    return frame


async def signaling(peer: Peer, count: int) -> list[dict]:
    """The next ``count`` rtc.* frames the peer gets, in the order it got them."""
    got = []
    while len(got) < count:
        message = await peer.recv()
        if message["type"].startswith("rtc."):
            got.append({k: v for k, v in message.items() if k != "v"})
    return got


@pytest.mark.parametrize("kiosk_on_edge", [True, False], ids=["kiosk-on-edge", "clerk-on-edge"])
async def test_a_kiosk_and_a_clerk_on_different_centrals_have_the_whole_visit(request, redis_client, kiosk_on_edge):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (runners, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            citizen = await kiosk(edge if kiosk_on_edge else leader, session, credentials["kiosk_token"])
            staff = await clerk(leader if kiosk_on_edge else edge, "sachbearbeiterin", credentials["clerk_password"])
            try:
                await citizen.send(type="visit.request", department=DEPARTMENT)
                queued = await citizen.recv("visit.queued")
                assert queued["position"] == 1
                visit_id = queued["visit_id"]
                assert (await staff.recv("queue.joined"))["visit"]["visit_id"] == visit_id  # the clerk sees them

                await staff.send(type="visit.pickup", visit_id=visit_id)
                assert (await staff.recv("call.assigned"))["visit"]["visit_id"] == visit_id
                assert (await citizen.recv("call.start"))["visit_id"] == visit_id

                sent = [{"type": "rtc.offer", "visit_id": visit_id, "sdp": OFFER}] + [
                    {"type": "rtc.candidate", "visit_id": visit_id, "candidate": c} for c in CANDIDATES]
                for message in sent:
                    await citizen.send(**message)
                assert await signaling(staff, len(sent)) == _as_relayed(sent)  # all of them, in order
                back = [{"type": "rtc.answer", "visit_id": visit_id, "sdp": ANSWER}] + [
                    {"type": "rtc.candidate", "visit_id": visit_id, "candidate": c} for c in CANDIDATES[:2]]
                for message in back:
                    await staff.send(**message)
                assert await signaling(citizen, len(back)) == _as_relayed(back)
                await citizen.send(type="rtc.state", visit_id=visit_id, state="connected")

                await staff.send(type="visit.message", visit_id=visit_id, text="Bitte den Ausweis bereithalten")
                assert (await citizen.recv("visit.message"))["text"] == "Bitte den Ausweis bereithalten"
                await staff.send(type="visit.transfer", visit_id=visit_id, department=OTHER)
                transferred = await citizen.recv("visit.transferred")
                assert transferred["department"] == OTHER and transferred["position"] == 1

                await staff.send(type="visit.pickup", visit_id=visit_id)  # she serves the Standesamt, too
                await citizen.recv("call.start")
                await citizen.send(type="visit.hangup", visit_id=visit_id)
                assert (await citizen.recv("visit.ended"))["reason"] == "hangup_kiosk"
                assert (await staff.recv("visit.ended"))["visit_id"] == visit_id
                assert not runners[0].app["hub"].rooms.all()  # the leader held the visit, and it is gone
                assert not runners[1].app["hub"].rooms.all()  # the edge never held anything
            finally:
                await staff.session.close()


def _as_relayed(sent: list[dict]) -> list[dict]:
    """What the other side gets of ``sent``: the same messages, with the fields central fills in."""
    out = []
    for message in sent:
        relayed = dict(message)
        relayed.setdefault("peer", None)
        out.append(relayed)
    return out


async def test_bad_frames_through_an_edge_get_the_errors_the_leader_gives(request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    db = await Database.open(database_url)
    try:
        _, other_token = await db.create_kiosk("Bücherei")
    finally:
        await db.close()
    bad = ["not json", json.dumps({"type": "visit.teleport"}), json.dumps({"type": "visit.request"}),
           json.dumps({"type": "ping", "pad": "x" * (MAX_FRAME_BYTES + 10)})]
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            direct = await kiosk(leader, session, credentials["kiosk_token"])
            relayed = await kiosk(edge, session, other_token)
            answers = []
            for peer in (direct, relayed):
                got = []
                for frame in bad:
                    await peer.send_raw(frame)
                    got.append(await peer.recv("error"))
                await peer.send(type="ping")  # still connected, and still served
                await peer.recv("pong")
                answers.append(got)
            assert [a["code"] for a in answers[0]] == ["bad_json", "unknown_type", "invalid_field", "too_large"]
            assert answers[1] == answers[0]


async def test_the_leader_admits_or_refuses_a_relayed_socket_by_its_own_limits(request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # checked on the edge: PostgreSQL
                await session.ws_connect(edge.replace("http", "ws") + "/ws/kiosk",
                                         headers={"Authorization": "Bearer no-such-token"})
            assert refused.value.status == 401
            auth = {"Authorization": f"Bearer {credentials['kiosk_token']}"}
            accepted = 0
            for _ in range(10):  # a kiosk may reconnect a few times in a row (KIOSK_CONNECTS) to the leader ...
                try:
                    ws = await session.ws_connect(leader.replace("http", "ws") + "/ws/kiosk", headers=auth)
                except aiohttp.WSServerHandshakeError as limited:
                    assert limited.status == 429
                    break
                accepted += 1
                await ws.close()
            else:
                raise AssertionError("the leader never limited the kiosk's reconnects")
            assert accepted >= KIOSK_CONNECTS.capacity
            with pytest.raises(aiohttp.WSServerHandshakeError) as also_limited:  # ... and the edge asks the leader
                await session.ws_connect(edge.replace("http", "ws") + "/ws/kiosk", headers=auth)
            assert also_limited.value.status == 429 and int(also_limited.value.headers["Retry-After"]) >= 1


async def test_envelopes_of_another_term_are_not_acted_on(request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (runners, (_, edge)):
        await until_status(edge, 200, path="/health/ws")
        remote, relaying = runners[0].app["remote_peers"], runners[1].app["edge"]
        async with aiohttp.ClientSession() as session:
            citizen = await kiosk(edge, session, credentials["kiosk_token"])
            await citizen.send(type="visit.request", department=DEPARTMENT)
            visit_id = (await citizen.recv("visit.queued"))["visit_id"]
            (edge_name, peer), = remote.sessions
            cancel = json.dumps({"type": "visit.cancel", "visit_id": visit_id})
            old = remote.epoch - 1

            # To the leader, as if from an edge of the term before: not acted on.
            await redis_client.publish(e.UP, bundle([e.pack(old, edge_name, peer, e.TEXT, cancel)]))
            # To the edge, as if from the leader of the term before: not passed on.
            await redis_client.publish(e.down(edge_name), bundle([e.pack(old, edge_name, peer, e.SEND,
                                                                         json.dumps({"type": "pong"}))]))
            await citizen.send(type="ping")
            assert (await citizen.recv())["type"] == "pong"  # the one real answer, and nothing before it
            assert runners[0].app["hub"].rooms.get(visit_id) is not None
            assert remote.stale == 1 and relaying.stale == 1

            await redis_client.publish(e.UP, bundle([e.pack(remote.epoch, edge_name, peer, e.TEXT, cancel)]))  # now
            assert (await citizen.recv("visit.ended"))["reason"] == "cancelled"


async def test_an_edge_that_loses_redis_closes_its_sockets_and_says_why(request, caplog):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    redis = await asyncio.to_thread(servers.start_redis)  # its own: this test stops it
    try:
        async with two_centrals(database_url, redis.url) as (runners, (_, edge)):
            await until_status(edge, 200, path="/health/ws")
            async with aiohttp.ClientSession() as session:
                citizen = await kiosk(edge, session, credentials["kiosk_token"])
                with caplog.at_level(logging.WARNING, logger="central.cluster.edge"):
                    await asyncio.to_thread(redis.stop)
                    async with asyncio.timeout(5):
                        closing = await closed(citizen)
                assert closing.data == aiohttp.WSCloseCode.SERVICE_RESTART
                said = [r.getMessage() for r in caplog.records if r.name == "central.cluster.edge"]
                assert any(m.startswith("edge: closed 1 relayed WebSockets (1012 Service Restart): ") and
                           "Valkey/Redis" in m for m in said), said
                await until_status(edge, 503, path="/health/ws")  # and takes none until Redis is back
    finally:
        redis.stop()


async def test_a_second_clerk_on_the_edge_cannot_take_a_visit_the_first_took(request, redis_client):
    """Two consoles, one on each central, pick up the same visit at once: the leader's hub gives it to one."""
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    db = await Database.open(database_url)
    try:
        await db.create_staff("kollege", "Herr Yilmaz", passwords.hash_password("correct horse 1"), "clerk",
                              [DEPARTMENT])
    finally:
        await db.close()
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            citizen = await kiosk(edge, session, credentials["kiosk_token"])
            first = await clerk(leader, "sachbearbeiterin", credentials["clerk_password"])
            second = await clerk(edge, "kollege", "correct horse 1")
            try:
                await citizen.send(type="visit.request", department=DEPARTMENT)
                visit_id = (await citizen.recv("visit.queued"))["visit_id"]
                await asyncio.gather(first.recv("queue.joined"), second.recv("queue.joined"))
                await asyncio.gather(first.send(type="visit.pickup", visit_id=visit_id),
                                     second.send(type="visit.pickup", visit_id=visit_id))
                answers = await asyncio.gather(*(_taken_or_refused(c) for c in (first, second)))
                assert sorted(answers) == ["already_taken", "call.assigned"], answers
                assert sum(m["type"] == "call.start" for m in [await citizen.recv("call.start")]) == 1
            finally:
                await first.session.close()
                await second.session.close()


async def _taken_or_refused(console: Peer) -> str:
    while True:
        message = await console.recv()
        if message["type"] == "call.assigned":
            return "call.assigned"
        if message["type"] == "error":
            return message["code"]


async def test_the_leaders_per_socket_limits_hold_for_relayed_peers(request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        visitors = Front(edge)
        async with aiohttp.ClientSession() as session:
            citizen = await kiosk(edge, session, credentials["kiosk_token"])
            staff = await clerk(leader, "sachbearbeiterin", credentials["clerk_password"])
            try:
                await citizen.send(type="visit.request", department=DEPARTMENT)
                visit_id = (await citizen.recv("visit.queued"))["visit_id"]
                await staff.send(type="visit.pickup", visit_id=visit_id)
                await citizen.recv("call.start")
                burst = CALL_SDP.capacity + 3
                for _ in range(burst):  # a flood of offers from the kiosk on the edge
                    await citizen.send(type="rtc.offer", visit_id=visit_id, sdp=OFFER)
                refused = [await citizen.recv("error") for _ in range(burst - CALL_SDP.capacity)]
                assert {(r["code"], r["ref"]) for r in refused} == {("rate_limited", "rtc.offer")}
                await staff.send(type="visit.hangup", visit_id=visit_id)
                await staff.recv("visit.ended")
                offers = sum(m["type"] == "rtc.offer" for m in staff.inbox)
                assert offers == CALL_SDP.capacity  # the clerk got what passed, and nothing more

                visitors = Front(edge)
                held = [await home(visitors) for _ in range(HOME_OPEN_PER_ADDRESS)]  # a few visits open ...
                assert all(not peer.ws.closed for peer in held)
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused_home:  # ... counted on the leader
                    await home(visitors)
                assert refused_home.value.status == 429
            finally:
                await staff.session.close()
                for opened in visitors.sessions:
                    await opened.close()


class Front:
    """What tests.central.home_client and guest_calls need of a central: where it is, a session for guests,
    and where to keep sessions."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.url, self.session, self.sessions = url, session, []


async def test_an_interpreter_on_the_edge_joins_a_call_whose_clerk_is_on_the_leader(request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            citizen = await kiosk(edge, session, credentials["kiosk_token"])
            staff = await clerk(leader, "sachbearbeiterin", credentials["clerk_password"])
            try:
                call = await call_in_progress(Front(leader), clerk=staff, kiosk=citizen)
                guest, peer = await admitted_guest(Front(edge, session), call)  # the link opened on the edge
                joined = await citizen.recv("call.participant_joined")
                assert joined["peer"] == peer and joined["role"] == "interpreter"
                await staff.send(type="visit.hangup", visit_id=call.visit_id)
                assert (await guest.recv("visit.ended"))["reason"] == "hangup_staff"
            finally:
                await staff.session.close()
