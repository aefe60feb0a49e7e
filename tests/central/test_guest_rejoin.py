"""A guest whose connection breaks (their network, or central closing the socket as on a change of leader)
comes back with the rejoin key of their last guest.welcome: the same guest, in the same call, and the clerk and
the citizen see them back. Not back within the grace, or the call over meanwhile: they are gone, and nothing
of them is kept. (Two real centrals and a change of leader: tests/central/test_guest_failover.py.)"""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.central.guest_calls import (
    CANDIDATE,
    SDP,
    Call,
    admitted_guest,
    call_in_progress,
    guest_socket,
    hello,
    invite,
)
from tests.central.home_client import home, queued_at_home

GRACE_S = 60.0


async def drop(central, call: Call, guest, peer_id: str) -> None:
    """Central closes the guest's socket (as an edge does with 1012 when the leader changes)."""
    central.hub.guest_links.get(call.visit_id, peer_id).link.close()
    await closed(guest)


async def closed(peer) -> None:
    """Read what was still sent until the socket closes."""
    async with asyncio.timeout(5):
        while (await peer.ws.receive()).type == aiohttp.WSMsgType.TEXT:
            pass


def afresh(peer) -> list[str]:
    """The participants whose pair with ``peer`` started afresh: left, then joined again."""
    return [f["peer"] for f in peer.inbox if f["type"] == "call.participant_left"]


async def rejoin(central, key: str):
    """A new socket saying guest.rejoin with ``key``: (the socket, central's first answer)."""
    again = await guest_socket(central)
    await again.send(type="guest.rejoin", key=key, language="en")
    return again, await again.recv()


async def test_a_guest_whose_socket_is_dropped_comes_back_into_the_call(central):
    central.hub.resume_grace_s = GRACE_S
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call, "interpreter", "Dolmetscherin")
    await call.kiosk.recv("call.participant_joined")
    key = guest.welcome["rejoin"]

    await drop(central, call, guest, g)
    # Nobody is told the guest left: their media may go on, and they come back. The clerk sees them away.
    away = await call.clerk.recv("guest.status")
    assert (away["peer"], away["state"], away["away"], away["reason"]) == (g, "in_call", True, None)
    for side in (call.kiosk, call.clerk):
        assert await side.quiet(0.3) == []

    again, welcome = await rejoin(central, key)
    assert (welcome["type"], welcome["visit_id"], welcome["peer"], welcome["label"]) == (
        "guest.welcome", call.visit_id, g, "Dolmetscherin")
    assert welcome["rejoin"] and welcome["rejoin"] != key  # a key works once
    assert welcome["rejoin_within_s"] == GRACE_S  # how long the page may keep trying
    await again.recv("guest.admitted")
    met = [await again.recv("call.participant_joined") for _ in range(2)]
    assert [(j["peer"], j["offer"]) for j in met] == [("citizen", False), ("clerk", False)]
    assert afresh(again) == ["citizen", "clerk"]
    # The kiosk and the console see the guest back and start their pair with them afresh (they offer).
    for side in (call.kiosk, call.clerk):
        assert (await side.recv("call.participant_left"))["peer"] == g
        joined = await side.recv("call.participant_joined")
        assert (joined["peer"], joined["label"], joined["offer"]) == (g, "Dolmetscherin", True)
    status = await call.clerk.recv("guest.status")
    assert (status["peer"], status["state"], status["away"]) == (g, "in_call", False)

    await call.kiosk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await again.recv("rtc.offer"))["peer"] == "citizen"
    await again.send(type="rtc.answer", visit_id=call.visit_id, peer="citizen", sdp=SDP)
    assert (await call.kiosk.recv("rtc.answer"))["peer"] == g

    third, refused = await rejoin(central, key)  # the used key brings nobody back
    assert (refused["type"], refused["reason"]) == ("guest.refused", "call_over")
    assert central.hub.guest_links.get(call.visit_id, g).link is not None  # and takes nothing from the guest


async def test_a_guest_who_does_not_come_back_within_the_grace_is_lost(central):
    central.hub.resume_grace_s = 0.5
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    await call.kiosk.recv("call.participant_joined")
    key = guest.welcome["rejoin"]
    await drop(central, call, guest, g)
    assert (await call.kiosk.recv("call.participant_left"))["peer"] == g
    assert (await call.clerk.recv("guest.status"))["away"] is True
    lost = await call.clerk.recv("guest.status")
    assert (lost["peer"], lost["state"], lost["reason"]) == (g, "gone", "lost")
    _, refused = await rejoin(central, key)
    assert (refused["type"], refused["reason"]) == ("guest.refused", "call_over")
    assert len(central.hub.guest_links) == 0


@pytest.mark.parametrize("meanwhile", ["hangup", "removed"])
async def test_a_guest_away_when_their_part_ends_hears_so_and_nothing_of_them_is_kept(central, meanwhile):
    central.hub.resume_grace_s = GRACE_S
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    key = guest.welcome["rejoin"]
    await drop(central, call, guest, g)
    assert (await call.clerk.recv("guest.status"))["away"] is True
    if meanwhile == "hangup":
        await call.clerk.send(type="visit.hangup", visit_id=call.visit_id)
        await call.kiosk.recv("visit.ended")
    else:
        await call.clerk.send(type="guest.remove", visit_id=call.visit_id, peer=g)
        assert (await call.clerk.recv("guest.status"))["reason"] == "removed"
    again, refused = await rejoin(central, key)
    assert (refused["type"], refused["reason"]) == ("guest.refused", "call_over")
    await closed(again)
    assert len(central.hub.guest_links) == 0 and not central.hub.guest_links._keys
    assert central.hub._guest_grace == {}


async def test_a_waiting_guest_comes_back_waiting_and_hears_of_an_admission_made_while_away(central):
    central.hub.resume_grace_s = GRACE_S
    call = await call_in_progress(central)
    status = await invite(call)
    guest, welcome = await hello(central, status)
    await guest.send(type="guest.ready", visit_id=call.visit_id)
    while (await call.clerk.recv("guest.status"))["state"] != "waiting":
        pass
    await drop(central, call, guest, status["peer"])

    again, back = await rejoin(central, welcome["rejoin"])
    assert back["type"] == "guest.welcome"
    for away in (True, False):  # away, then back, still waiting
        seen = await call.clerk.recv("guest.status")
        assert (seen["state"], seen["away"]) == ("waiting", away)
    assert await again.quiet(0.3) == []  # still waiting: nothing more
    await drop(central, call, again, status["peer"])
    assert (await call.clerk.recv("guest.status"))["away"] is True
    await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=status["peer"])
    admitted = await call.clerk.recv("guest.status")
    assert (admitted["state"], admitted["away"]) == ("in_call", True)
    assert await call.kiosk.quiet(0.3) == []  # announced when the guest is there to hear the offers

    third, back = await rejoin(central, back["rejoin"])
    await third.recv("guest.admitted")
    assert [(await third.recv("call.participant_joined"))["peer"] for _ in range(2)] == ["citizen", "clerk"]
    assert (await call.kiosk.recv("call.participant_joined"))["peer"] == status["peer"]


async def test_a_guest_back_before_the_citizen_restarts_the_pair_when_the_citizen_is_back(central):
    """The order after a change of leader: the guest's page is back before the kiosk."""
    central.hub.resume_grace_s = GRACE_S
    call = await call_in_progress(central)
    token = call.kiosk.inbox[-1]["resume_token"]  # call.start's
    guest, g = await admitted_guest(central, call)
    await call.kiosk.recv("call.participant_joined")
    await call.kiosk.ws.close()
    await drop(central, call, guest, g)

    again, _ = await rejoin(central, guest.welcome["rejoin"])
    await again.recv("guest.admitted")
    assert [(await again.recv("call.participant_joined"))["peer"] for _ in range(2)] == ["citizen", "clerk"]
    assert afresh(again) == ["clerk"]  # the kiosk is away: that pair stays as it is for now

    kiosk = await central.kiosk()
    await kiosk.send(type="visit.resume", visit_id=call.visit_id, resume_token=token)
    assert (await kiosk.recv("visit.resumed"))["state"] == "in_call"
    assert (await kiosk.recv("call.participant_left"))["peer"] == g
    joined = await kiosk.recv("call.participant_joined")
    assert (joined["peer"], joined["offer"]) == (g, True)
    assert (await again.recv("call.participant_left"))["peer"] == "citizen"
    joined = await again.recv("call.participant_joined")
    assert (joined["peer"], joined["offer"]) == ("citizen", False)
    await kiosk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await again.recv("rtc.offer"))["peer"] == "citizen"


async def test_an_old_connection_still_open_is_replaced_by_the_rejoining_one(central):
    central.hub.resume_grace_s = GRACE_S
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    again, welcome = await rejoin(central, guest.welcome["rejoin"])
    assert welcome["type"] == "guest.welcome"
    assert (await guest.recv("error"))["code"] == "replaced"
    await closed(guest)
    await call.clerk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await again.recv("rtc.offer"))["peer"] == "clerk"
    assert all(s["state"] == "in_call" for s in await call.clerk.quiet(0.3) if s["type"] == "guest.status")


async def test_a_visitor_from_home_whose_socket_drops_in_a_call_with_a_guest_resumes_it_with_its_token(central):
    central.hub.resume_grace_s = GRACE_S
    browser, queued = await queued_at_home(central)
    clerk = await central.clerk()
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await clerk.recv("call.assigned")
    start = await browser.recv("call.start")
    guest, g = await admitted_guest(central, Call(clerk, browser, queued["visit_id"]))
    await browser.recv("call.participant_joined")
    visit = central.hub.rooms.get(queued["visit_id"])
    central.hub.homes[visit.home_id].link.close()  # central drops the page's socket
    await closed(browser)
    for side in (clerk, guest):  # nothing ends while the page is away
        assert not {f["type"] for f in await side.quiet(0.3)} & {"visit.ended", "call.participant_left"}

    page = await home(central)
    await page.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=start["resume_token"])
    resumed = await page.recv("visit.resumed")
    assert (resumed["state"], resumed["visit_id"]) == ("in_call", queued["visit_id"])
    # The call goes on (its media is peer to peer): no new call.start, and signaling reaches the clerk.
    await page.send(type="rtc.candidate", visit_id=queued["visit_id"], candidate=CANDIDATE)
    assert (await clerk.recv("rtc.candidate"))["peer"] is None
    await page.send(type="rtc.candidate", visit_id=queued["visit_id"], peer=g, candidate=CANDIDATE)
    assert (await guest.recv("rtc.candidate"))["peer"] == "citizen"
    assert not [f for f in page.inbox if f["type"] == "call.start"]
