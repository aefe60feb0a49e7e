"""Waiting rooms as a citizen and a clerk see them, through the real WebSocket endpoints."""
from __future__ import annotations

import asyncio
import datetime as dt

from tests.central.conftest import Peer

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def test_a_visit_is_queued_announced_and_picked_up(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero", language="tr")
    queued = await kiosk.recv("visit.queued")
    assert queued["position"] == 1 and queued["department"] == "buergerbuero"

    joined = await clerk.recv("queue.joined")
    assert joined["visit"]["visit_id"] == queued["visit_id"]
    assert joined["visit"]["kiosk_location"] == "Rathaus Musterdorf, Foyer"
    assert joined["visit"]["language"] == "tr"

    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    assigned = await clerk.recv("call.assigned")
    assert assigned["visit"]["visit_id"] == queued["visit_id"]
    assert assigned["ice_servers"] == []  # never a public default
    start = await kiosk.recv("call.start")
    assert start["ice_servers"] == []

    # Signaling is relayed between exactly these two parties.
    await kiosk.send(type="rtc.offer", visit_id=queued["visit_id"], sdp=SDP)
    assert (await clerk.recv("rtc.offer"))["sdp"] == SDP
    await clerk.send(type="rtc.answer", visit_id=queued["visit_id"], sdp=SDP)
    assert (await kiosk.recv("rtc.answer"))["sdp"] == SDP
    candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await clerk.send(type="rtc.candidate", visit_id=queued["visit_id"], candidate=candidate)
    assert (await kiosk.recv("rtc.candidate"))["candidate"] == candidate

    await clerk.send(type="visit.hangup", visit_id=queued["visit_id"])
    assert (await kiosk.recv("visit.ended"))["reason"] == "hangup_staff"
    assert (await clerk.recv("visit.ended"))["reason"] == "hangup_staff"
    assert len(central.hub.rooms) == 0


async def test_visits_wait_in_order_of_arrival_and_positions_move_up(central):
    clerk = await central.clerk()
    kiosks = [await central.new_kiosk(f"Ort {i}") for i in range(4)]
    ids = []
    for i, k in enumerate(kiosks):
        await k.send(type="visit.request", department="standesamt")
        queued = await k.recv("visit.queued")
        assert queued["position"] == i + 1
        ids.append(queued["visit_id"])

    await clerk.send(type="visit.pickup", department="standesamt")
    assert (await clerk.recv("call.assigned"))["visit"]["visit_id"] == ids[0]
    for i, k in enumerate(kiosks[1:], start=1):
        assert (await k.recv("visit.position"))["position"] == i  # one place up


async def test_expected_wait_follows_recent_call_durations(central):
    hub = central.hub
    kiosk_a, kiosk_b = await central.new_kiosk("A"), await central.new_kiosk("B")
    await kiosk_a.send(type="visit.request", department="standesamt")
    first = (await kiosk_a.recv("visit.queued"))["expected_wait_s"]
    for _ in range(5):
        hub.estimator.record("standesamt", 900)  # calls of 15 minutes today
    await kiosk_b.send(type="visit.request", department="standesamt")
    second = (await kiosk_b.recv("visit.queued"))["expected_wait_s"]
    assert second >= 2 * 900 - 1 and second > first


async def test_two_clerks_never_pick_up_the_same_visit(central):
    clerks = [await central.new_clerk(f"clerk{i}", ["buergerbuero"]) for i in range(6)]
    kiosks = [await central.new_kiosk(f"K{i}") for i in range(3)]
    for k in kiosks:
        await k.send(type="visit.request", department="buergerbuero")
        await k.recv("visit.queued")
    # Everyone grabs at once, some by id, some "next".
    target = central.hub.rooms.waiting("buergerbuero")[0].id
    await asyncio.gather(*[c.send(type="visit.pickup", **({"visit_id": target} if i % 2 else
                                                         {"department": "buergerbuero"}))
                           for i, c in enumerate(clerks)])
    results = []
    for c in clerks:
        while True:
            msg = await c.recv()
            if msg["type"] in ("call.assigned", "error"):
                results.append(msg)
                break
    assigned = [r["visit"]["visit_id"] for r in results if r["type"] == "call.assigned"]
    assert len(assigned) == len(set(assigned)) == 3  # three visits, three different clerks
    errors = [r["code"] for r in results if r["type"] == "error"]
    assert len(errors) == 3 and set(errors) <= {"already_taken", "queue_empty"}
    for k in kiosks:
        assert (await k.recv("call.start"))["visit_id"]


async def test_transfer_keeps_the_original_arrival_time(central):
    clerk = await central.clerk()
    early, late = await central.new_kiosk("Früh"), await central.new_kiosk("Spät")
    await early.send(type="visit.request", department="buergerbuero")
    early_visit = await early.recv("visit.queued")
    await asyncio.sleep(0.01)
    await late.send(type="visit.request", department="standesamt")
    assert (await late.recv("visit.queued"))["position"] == 1

    await clerk.send(type="visit.pickup", visit_id=early_visit["visit_id"])
    await clerk.recv("call.assigned")
    await clerk.send(type="visit.transfer", visit_id=early_visit["visit_id"], department="standesamt")
    moved = await early.recv("visit.transferred")
    assert moved["department"] == "standesamt" and moved["position"] == 1  # arrived first: stays first
    assert moved["visit_id"] == early_visit["visit_id"]  # no new number
    assert (await clerk.recv("visit.ended"))["reason"] == "transferred"
    assert (await late.recv("visit.position"))["position"] == 2
    joined = [m for m in clerk.inbox if m["type"] == "queue.joined" and m["visit"]["department"] == "standesamt"]
    assert joined or (await clerk.recv("queue.joined"))


async def test_outside_office_hours_a_request_is_refused_with_the_next_opening(central):
    # Ordnungsamt: Monday 08-12 and 14-16. Monday 12:30 in Berlin is the lunch break.
    central.clock.fixed = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="ordnungsamt")
    refused = await kiosk.recv("visit.refused")
    assert refused["reason"] == "closed"
    assert refused["next_opening"].startswith("2026-11-23T14:00")
    assert len(central.hub.rooms) == 0

    central.clock.fixed = dt.datetime(2026, 11, 23, 14, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    await kiosk.send(type="visit.request", department="ordnungsamt")
    assert (await kiosk.recv("visit.queued"))["position"] == 1


async def test_a_clerk_cannot_touch_another_departments_visits(central):
    outsider = await central.new_clerk("standesbeamter", ["standesamt"])
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    assert not [m for m in await outsider.quiet() if m["type"] == "queue.joined"]  # not even told

    for attempt in ({"type": "visit.pickup", "visit_id": visit["visit_id"]},
                    {"type": "visit.pickup", "department": "buergerbuero"},
                    {"type": "visit.message", "visit_id": visit["visit_id"], "text": "Hallo"},
                    {"type": "visit.transfer", "visit_id": visit["visit_id"], "department": "standesamt"},
                    {"type": "rtc.answer", "visit_id": visit["visit_id"], "sdp": SDP},
                    {"type": "visit.hangup", "visit_id": visit["visit_id"]}):
        await outsider.send(**attempt)
        error = await outsider.recv("error")
        assert error["code"] in ("forbidden", "not_your_visit"), (attempt, error)
    assert central.hub.rooms.get(visit["visit_id"]).department == "buergerbuero"
    assert not await kiosk.quiet()  # the citizen noticed nothing


async def test_clerk_message_reaches_the_waiting_kiosk(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.message", visit_id=visit["visit_id"], text="Ich bin in 2 Minuten bei Ihnen")
    assert (await kiosk.recv("visit.message"))["text"] == "Ich bin in 2 Minuten bei Ihnen"


async def test_cancel_removes_the_visit_from_every_console(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    await kiosk.send(type="visit.cancel", visit_id=visit["visit_id"])
    assert (await kiosk.recv("visit.ended"))["reason"] == "cancelled"
    left = await clerk.recv("queue.left")
    assert left["visit_id"] == visit["visit_id"] and left["reason"] == "cancelled"
    assert len(central.hub.rooms) == 0


async def test_a_reconnecting_kiosk_keeps_its_place(central):
    first, second = await central.new_kiosk("Erster"), await central.kiosk()
    await first.send(type="visit.request", department="buergerbuero")
    await first.recv("visit.queued")
    await second.send(type="visit.request", department="buergerbuero")
    visit = await second.recv("visit.queued")
    await second.ws.close()
    await asyncio.sleep(0.1)
    again = await central.kiosk()
    await again.send(type="visit.resume", visit_id=visit["visit_id"], resume_token=visit["resume_token"])
    resumed = await again.recv("visit.resumed")
    assert resumed["state"] == "waiting" and resumed["position"] == 2


async def test_a_vanished_kiosk_leaves_the_queue_after_the_grace_period(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    await kiosk.ws.close()
    left = await clerk.recv("queue.left", timeout=3)  # grace is 1 s in tests
    assert left == {**left, "visit_id": visit["visit_id"], "reason": "kiosk_lost"}
    assert len(central.hub.rooms) == 0


async def test_nothing_of_a_visit_remains_after_it_ends(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero", language="uk")
    visit = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.message", visit_id=visit["visit_id"], text="Einen Moment bitte")
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await kiosk.recv("call.start")
    await kiosk.send(type="rtc.offer", visit_id=visit["visit_id"], sdp=SDP)
    await clerk.recv("rtc.offer")
    await kiosk.send(type="visit.hangup", visit_id=visit["visit_id"])
    await clerk.recv("visit.ended")
    await asyncio.sleep(0.2)  # let the counter write finish

    hub = central.hub
    assert len(hub.rooms) == 0 and not hub._grace
    assert all(peer.visit_id is None for peer in hub.staff.values())
    # The database holds the anonymous counter and nothing that names the visit.
    dump = "\n".join(await _dump_database(central))
    for secret in (visit["visit_id"], visit["resume_token"], "Einen Moment bitte", "v=0"):
        assert secret not in dump
    stats = await central.db.daily_stats(dt.date.today() - dt.timedelta(days=1))
    assert [(s.department, s.visits, s.calls) for s in stats] == [("buergerbuero", 1, 1)]


async def _dump_database(central) -> list[str]:
    import sqlalchemy as sa

    from central.storage.schema import metadata
    lines = []
    async with central.db.engine.connect() as c:
        for table in metadata.sorted_tables:
            for row in (await c.execute(sa.select(table))).all():
                lines.append(f"{table.name}: {tuple(row)}")
    return lines


async def test_a_clerk_whose_console_reconnects_mid_call_gets_the_call_back(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = await kiosk.recv("visit.queued")
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")

    # Logged in beforehand: a password check on a busy machine may take longer than the 1 s grace.
    session = await central.login("sachbearbeiterin", central.credentials["clerk_password"])
    await clerk.ws.close()  # e.g. the clerk reloaded the page
    await asyncio.sleep(0.1)
    again = Peer(await session.ws_connect(central.url.replace("http", "ws") + "/ws/staff",
                                          headers={"Origin": central.url}))
    assert (await again.recv())["presence"] == "in_call"
    assigned = await again.recv("call.assigned")
    assert assigned["visit"]["visit_id"] == visit["visit_id"] and assigned["resumed"] is True
    # Media is peer to peer and may have gone on: the kiosk is not told to start over ...
    assert [f["type"] for f in await kiosk.quiet()] == []
    # ... unless the console has lost its peer connection and asks for it.
    await again.send(type="call.restart", visit_id=visit["visit_id"])
    assert (await kiosk.recv("call.start"))["visit_id"] == visit["visit_id"]
    await asyncio.sleep(1.5)  # longer than the grace period: the call must not have been ended
    assert central.hub.rooms.get(visit["visit_id"]) is not None
    await again.send(type="visit.hangup", visit_id=visit["visit_id"])
    assert (await kiosk.recv("visit.ended"))["reason"] == "hangup_staff"
