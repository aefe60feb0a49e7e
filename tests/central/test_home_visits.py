"""Visits from home through ``/ws/visit``: a browser waits in the same waiting room as kiosk visitors, and a
clerk picks it up, writes to it, transfers it and hangs up as with a kiosk, seeing "online" as its origin."""
from __future__ import annotations

import asyncio

from tests.central.home_client import home, queued_at_home
from tests.central.test_home_pages import SUNDAY
from tests.central.test_waiting_rooms import SDP, _dump_database

CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


async def test_welcome_names_every_department_and_no_kiosk(central):
    peer = await home(central)
    assert peer.welcome["kiosk_location"] == ""
    assert [d["slug"] for d in peer.welcome["departments"]] == ["buergerbuero", "standesamt", "ordnungsamt",
                                                                 "buergermeister"]
    assert peer.welcome["ice_servers"] == []  # never a public default


async def test_a_visitor_from_home_waits_with_kiosk_visitors_and_is_picked_up(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    at_kiosk = await kiosk.recv("visit.queued")
    browser, queued = await queued_at_home(central, language="ar")
    assert queued["position"] == 2

    joined = [m for m in [await clerk.recv("queue.joined"), await clerk.recv("queue.joined")]]
    online = joined[1]["visit"]
    assert online["visit_id"] == queued["visit_id"] and online["origin"] == "online"
    assert online["kiosk_location"] == "" and online["language"] == "ar"
    assert joined[0]["visit"]["origin"] == "kiosk"

    await clerk.send(type="visit.message", visit_id=queued["visit_id"], text="Gleich sind Sie dran.")
    assert (await browser.recv("visit.message"))["text"] == "Gleich sind Sie dran."

    await clerk.send(type="visit.pickup", visit_id=at_kiosk["visit_id"])
    await clerk.recv("call.assigned")
    assert (await browser.recv("visit.position"))["position"] == 1
    await clerk.send(type="visit.hangup", visit_id=at_kiosk["visit_id"])
    await clerk.recv("visit.ended")

    await clerk.send(type="visit.pickup", department="buergerbuero")
    assigned = await clerk.recv("call.assigned")
    assert assigned["visit"]["visit_id"] == queued["visit_id"] and assigned["visit"]["origin"] == "online"
    start = await browser.recv("call.start")
    assert start["visit_id"] == queued["visit_id"] and start["ice_servers"] == []

    # The browser offers, as a kiosk does; the signaling passes between exactly these two.
    await browser.send(type="rtc.offer", visit_id=queued["visit_id"], sdp=SDP)
    assert (await clerk.recv("rtc.offer"))["sdp"] == SDP
    await clerk.send(type="rtc.answer", visit_id=queued["visit_id"], sdp=SDP)
    assert (await browser.recv("rtc.answer"))["sdp"] == SDP
    await browser.send(type="rtc.candidate", visit_id=queued["visit_id"], candidate=CANDIDATE)
    assert (await clerk.recv("rtc.candidate"))["candidate"] == CANDIDATE
    await clerk.send(type="rtc.candidate", visit_id=queued["visit_id"], candidate=CANDIDATE)
    assert (await browser.recv("rtc.candidate"))["candidate"] == CANDIDATE
    await browser.send(type="rtc.state", visit_id=queued["visit_id"], state="connected")
    await browser.send(type="ping")
    await browser.recv("pong")  # handled in order: the state is through
    assert queued["visit_id"] not in central.hub._media  # the citizen's side connected: no media timeout

    await browser.send(type="visit.hangup", visit_id=queued["visit_id"])
    assert (await browser.recv("visit.ended"))["reason"] == "hangup_kiosk"
    assert (await clerk.recv("visit.ended"))["reason"] == "hangup_kiosk"
    assert len(central.hub.rooms) == 0

    # Nothing of it is kept.
    await asyncio.sleep(0.2)
    dump = "\n".join(await _dump_database(central))
    for secret in (queued["visit_id"], queued["resume_token"], "Gleich sind Sie dran.", "v=0"):
        assert secret not in dump


async def test_a_transferred_visit_from_home_waits_again_and_is_picked_up_there(central):
    clerk = await central.clerk()
    browser, queued = await queued_at_home(central, "buergerbuero")
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await browser.recv("call.start")
    await clerk.send(type="visit.transfer", visit_id=queued["visit_id"], department="standesamt")
    moved = await browser.recv("visit.transferred")
    assert moved["department"] == "standesamt" and moved["position"] == 1
    assert (await clerk.recv("visit.ended"))["reason"] == "transferred"
    joined = await clerk.recv("queue.joined")
    assert joined["reason"] == "transferred" and joined["visit"]["origin"] == "online"

    await clerk.send(type="visit.pickup", department="standesamt")
    await clerk.recv("call.assigned")
    assert (await browser.recv("call.start"))["visit_id"] == queued["visit_id"]
    await browser.send(type="rtc.offer", visit_id=queued["visit_id"], sdp=SDP)
    assert (await clerk.recv("rtc.offer"))["sdp"] == SDP
    await clerk.send(type="visit.hangup", visit_id=queued["visit_id"])
    assert (await browser.recv("visit.ended"))["reason"] == "hangup_staff"


async def test_cancel_while_waiting(central):
    clerk = await central.clerk()
    browser, queued = await queued_at_home(central)
    await clerk.recv("queue.joined")
    await browser.send(type="visit.cancel", visit_id=queued["visit_id"])
    assert (await browser.recv("visit.ended"))["reason"] == "cancelled"
    left = await clerk.recv("queue.left")
    assert left["visit_id"] == queued["visit_id"] and left["reason"] == "cancelled"
    assert len(central.hub.rooms) == 0


async def test_a_page_that_lost_its_connection_resumes_its_place_with_the_token(central):
    browser, queued = await queued_at_home(central)
    await browser.ws.close()
    await asyncio.sleep(0.1)
    assert len(central.hub.rooms) == 1  # kept through the grace
    again = await home(central)
    await again.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=queued["resume_token"])
    resumed = await again.recv("visit.resumed")
    assert resumed["state"] == "waiting" and resumed["position"] == 1
    await asyncio.sleep(central.hub.resume_grace_s + 0.3)
    assert len(central.hub.rooms) == 1  # the grace was stopped
    await again.send(type="visit.cancel", visit_id=queued["visit_id"])
    assert (await again.recv("visit.ended"))["reason"] == "cancelled"


async def test_a_lost_page_that_does_not_come_back_leaves_the_queue(central):
    clerk = await central.clerk()
    browser, queued = await queued_at_home(central)
    await clerk.recv("queue.joined")
    await browser.ws.close()
    left = await clerk.recv("queue.left", timeout=central.hub.resume_grace_s + 3)
    assert left["visit_id"] == queued["visit_id"] and left["reason"] == "kiosk_lost"
    assert len(central.hub.rooms) == 0


async def test_closed_and_unknown_departments_are_refused(central):
    central.clock.fixed = SUNDAY
    browser = await home(central)
    await browser.send(type="visit.request", department="ordnungsamt")
    refused = await browser.recv("visit.refused")
    assert refused["reason"] == "closed" and refused["next_opening"].startswith("2026-12-07T08:00")
    await browser.send(type="visit.request", department="no-such-office")
    assert (await browser.recv("visit.refused"))["reason"] == "unknown_department"
    await browser.send(type="visit.request", department="buergerbuero")
    await browser.recv("visit.queued")
    await browser.send(type="visit.request", department="standesamt")
    assert (await browser.recv("visit.refused"))["reason"] == "already_waiting"


async def test_after_a_restart_of_central_the_page_resumes_its_place_and_its_call(central):
    from tests.central.test_restart_in_process import restarted

    clerk = await central.clerk()
    waiting, first = await queued_at_home(central, language="uk")
    talking, second = await queued_at_home(central)
    await clerk.send(type="visit.pickup", visit_id=second["visit_id"])
    start = await talking.recv("call.start")
    async with restarted(central) as again:
        # The waiting visitor comes back first in line, the clerk sees where from.
        clerk2 = await again.clerk()
        page = await home(again)
        await page.send(type="visit.resume", visit_id=first["visit_id"], resume_token=first["resume_token"])
        resumed = await page.recv("visit.resumed")
        assert resumed["state"] == "waiting" and resumed["position"] == 1
        joined = await clerk2.recv("queue.joined")
        assert joined["reason"] == "restored" and joined["visit"]["origin"] == "online"
        assert joined["visit"]["language"] == "uk"
        # The call goes on: the page and the clerk both have it back.
        page2 = await home(again)
        await page2.send(type="visit.resume", visit_id=second["visit_id"], resume_token=start["resume_token"])
        assert (await page2.recv("visit.resumed"))["state"] == "in_call"
        assigned = await clerk2.recv("call.assigned")
        assert assigned["resumed"] and assigned["visit"]["visit_id"] == second["visit_id"]
        # Another visitor's token does not take over a restored visit.
        intruder = await home(again)
        await intruder.send(type="visit.resume", visit_id=first["visit_id"], resume_token=start["resume_token"])
        assert (await intruder.recv("error"))["code"] == "not_your_visit"


async def test_after_a_restart_each_page_is_told_its_place_whichever_comes_back_first(central):
    from tests.central.test_restart_in_process import restarted

    first_page, first = await queued_at_home(central)
    second_page, second = await queued_at_home(central)
    assert (first["position"], second["position"]) == (1, 2)
    async with restarted(central) as again:
        # The later visitor's page reconnects first: first in line until the earlier one is back.
        later = await home(again)
        await later.send(type="visit.resume", visit_id=second["visit_id"], resume_token=second["resume_token"])
        assert (await later.recv("visit.resumed"))["position"] == 1
        earlier = await home(again)
        await earlier.send(type="visit.resume", visit_id=first["visit_id"], resume_token=first["resume_token"])
        resumed = await earlier.recv("visit.resumed")
        assert resumed["position"] == 1
        moved = await later.recv("visit.position")
        assert (moved["visit_id"], moved["position"]) == (second["visit_id"], 2)
        assert moved["expected_wait_s"] > resumed["expected_wait_s"]
