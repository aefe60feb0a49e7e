"""Central restarting while citizens wait: shutdown keeps visits, resume tokens put them back.

A restart here is a second central application on the same database, started after the
first one began its shutdown: new memory, new process instance, same signing key.
"""
from __future__ import annotations

import contextlib
import datetime as dt

import aiohttp
from aiohttp import web

from central.app import begin_shutdown, create_app
from central.rooms import Visit
from central.rooms.resume_token import ResumeTokens
from tests.central.conftest import Central

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@contextlib.asynccontextmanager
async def restarted(central):
    """Stop ``central`` as SIGTERM does and start a fresh one on the same database."""
    await begin_shutdown(central.app)
    app = create_app(central.app["config"], now=central.clock)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    again = Central(f"http://127.0.0.1:{port}", app, central.credentials, central.clock, central.session)
    try:
        yield again
    finally:
        for s in again.sessions:
            await s.close()
        await runner.cleanup()


async def _closed_with(peer) -> int:
    """Read until the socket closes; no visit may end on the way. The close code."""
    while True:
        frame = await peer.ws.receive(timeout=5)
        if frame.type == aiohttp.WSMsgType.TEXT:
            assert '"visit.ended"' not in frame.data, frame.data
            continue
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), frame
        return peer.ws.close_code


async def _queue(central, count: int) -> list[tuple[str, object, dict]]:
    """``count`` kiosks waiting one after the other: (kiosk token, peer, visit.queued)."""
    kiosks = []
    for i in range(count):
        _, token = await central.db.create_kiosk(f"Ort {i}")
        kiosk = await central.kiosk(token)
        await kiosk.send(type="visit.request", department="buergerbuero")
        queued = await kiosk.recv("visit.queued")
        assert queued["position"] == i + 1
        kiosks.append((token, kiosk, queued))
    return kiosks


async def test_shutdown_closes_every_socket_with_1012_and_ends_no_visit(central):
    clerk = await central.clerk()
    (_, kiosk, queued), = await _queue(central, 1)
    await begin_shutdown(central.app)

    assert await _closed_with(kiosk) == aiohttp.WSCloseCode.SERVICE_RESTART == 1012
    assert await _closed_with(clerk) == 1012
    async with central.session.get(central.url + "/status") as r:
        assert r.status == 503 and r.headers["Retry-After"].isdigit()
        assert "Content-Security-Policy" in r.headers  # the usual headers still apply
    # Nothing was ended or recorded: the visit lives on in its kiosk's token.
    assert [v.id for v in central.hub.rooms.all()] == [queued["visit_id"]]
    assert await central.db.daily_stats(dt.date.today() - dt.timedelta(days=1)) == []


async def test_waiting_visits_come_back_in_their_original_order(central):
    kiosks = await _queue(central, 4)
    order = [queued["visit_id"] for _, _, queued in kiosks]
    async with restarted(central) as again:
        console = await again.clerk()
        latest = {}
        # They come back in the opposite order: the place comes from the token, not from who is first.
        for token, _, queued in reversed(kiosks):
            kiosk = await again.kiosk(token)
            await kiosk.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=queued["resume_token"])
            resumed = await kiosk.recv("visit.resumed")
            assert resumed["state"] == "waiting" and resumed["resume_token"] != queued["resume_token"]
            latest[queued["visit_id"]] = kiosk
            joined = await console.recv("queue.joined")
            assert (joined["visit"]["visit_id"], joined["reason"]) == (queued["visit_id"], "restored")
        for kiosk in latest.values():
            await kiosk.quiet()  # collect the visit.position updates
        for place, visit_id in enumerate(order, start=1):
            told = [f for f in latest[visit_id].inbox if f["type"] in ("visit.resumed", "visit.position")]
            assert told[-1]["position"] == place
        assert [v.id for v in again.hub.rooms.waiting("buergerbuero")] == order
        snapshot = (await again.clerk("sachbearbeiterin")).inbox[0]
        assert [v["visit_id"] for v in snapshot["departments"][0]["waiting"]] == order


async def test_a_call_goes_on_across_a_restart_and_can_be_hung_up(central):
    clerk, kiosk = await central.clerk(), await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    queued = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await clerk.recv("call.assigned")
    start = await kiosk.recv("call.start")
    await kiosk.send(type="rtc.state", visit_id=queued["visit_id"], state="connected")

    async with restarted(central) as again:
        again.hub.resume_grace_s = 30
        kiosk = await again.kiosk()
        await kiosk.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=start["resume_token"])
        assert (await kiosk.recv("visit.resumed"))["state"] == "in_call"
        clerk = await again.clerk()
        assert clerk.inbox[0]["presence"] == "in_call"
        assigned = await clerk.recv("call.assigned")
        assert assigned["visit"]["visit_id"] == queued["visit_id"] and assigned["resumed"] is True
        assert [f["type"] for f in await kiosk.quiet()] == []  # no renegotiation: media went on
        await clerk.send(type="visit.hangup", visit_id=queued["visit_id"])
        assert (await kiosk.recv("visit.ended"))["reason"] == "hangup_staff"
        assert (await clerk.recv("visit.ended"))["reason"] == "hangup_staff"


async def test_a_clerk_back_before_the_kiosk_gets_the_call_when_the_kiosk_resumes(central):
    clerk, kiosk = await central.clerk(), await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    queued = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    start = await kiosk.recv("call.start")

    async with restarted(central) as again:
        clerk = await again.clerk()
        assert clerk.inbox[0]["presence"] == "available"  # central does not know of the call yet
        kiosk = await again.kiosk()
        await kiosk.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=start["resume_token"])
        assert (await kiosk.recv("visit.resumed"))["state"] == "in_call"
        assigned = await clerk.recv("call.assigned")
        assert assigned["visit"]["visit_id"] == queued["visit_id"] and assigned["resumed"] is True
        assert (await clerk.recv("presence.changed"))["presence"] == "in_call"
        await kiosk.send(type="visit.hangup", visit_id=queued["visit_id"])
        assert (await clerk.recv("visit.ended"))["reason"] == "hangup_kiosk"


async def test_tokens_that_must_not_put_a_visit_back(central):
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    queued = await kiosk.recv("visit.queued")
    await kiosk.send(type="visit.cancel", visit_id=queued["visit_id"])
    await kiosk.recv("visit.ended")
    # The same process: a visit that is gone has ended, whatever its token says.
    await kiosk.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=queued["resume_token"])
    assert (await kiosk.recv("error"))["code"] == "not_your_visit"

    _, other_token = await central.db.create_kiosk("Woanders")
    other = await central.kiosk(other_token)
    await other.send(type="visit.request", department="standesamt")
    others = await other.recv("visit.queued")
    signature, _, payload = others["resume_token"].partition(".")
    key = await central.db.secret("resume_token_key")
    expired = ResumeTokens(key, -60)  # as if issued long ago
    stale = Visit(kiosk_id=central.hub.rooms.get(others["visit_id"]).kiosk_id, kiosk_location="x",
                  department="standesamt", language="de", id=others["visit_id"])
    async with restarted(central) as again:
        kiosk, other = await again.kiosk(), await again.kiosk(other_token)
        refused = {
            "another kiosk's token": (kiosk, others["visit_id"], others["resume_token"]),
            "a forged payload": (other, others["visit_id"], f"{signature}.{payload[:-4]}AAAA"),
            "an expired token": (other, others["visit_id"], expired.issue(stale)),
            "an unsigned token": (other, others["visit_id"], payload[:60]),
        }
        for name, (peer, visit_id, token) in refused.items():
            await peer.send(type="visit.resume", visit_id=visit_id, resume_token=token)
            error = await peer.recv()
            assert (error["type"], error.get("code")) == ("error", "not_your_visit"), name
        assert len(again.hub.rooms) == 0
        # The genuine one still works.
        await other.send(type="visit.resume", visit_id=others["visit_id"], resume_token=others["resume_token"])
        assert (await other.recv("visit.resumed"))["position"] == 1
