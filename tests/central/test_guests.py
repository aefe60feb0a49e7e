"""An interpreter or colleague joins a call by a one-time link: what each side hears, and what central routes."""
from __future__ import annotations

from tests.central.guest_calls import (
    CANDIDATE,
    SDP,
    Call,
    admitted_guest,
    call_in_progress,
    hello,
    invite,
    secret_of,
)
from tests.central.home_client import queued_at_home


async def test_an_admitted_guest_is_announced_to_everyone_and_each_pair_signals_through_central(central):
    call = await call_in_progress(central)
    status = await invite(call, "interpreter", "Dolmetscherin Türkisch")
    assert (status["role"], status["label"], status["peer"][:2]) == ("interpreter", "Dolmetscherin Türkisch", "g-")
    assert len(secret_of(status)) >= 22  # at least 128 random bits

    guest, welcome = await hello(central, status)
    assert (welcome["type"], welcome["visit_id"], welcome["peer"]) == ("guest.welcome", call.visit_id, status["peer"])
    assert welcome["department"] == "Bürgerbüro"
    joining = await call.clerk.recv("guest.status")
    assert (joining["state"], joining["link"]) == ("joining", None)  # used up: no longer shown
    await guest.send(type="guest.ready", visit_id=call.visit_id)
    assert (await call.clerk.recv("guest.status"))["state"] == "waiting"
    assert await call.kiosk.quiet() == []  # the citizen hears of nobody before the clerk admits them

    await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=status["peer"])
    await guest.recv("guest.admitted")
    met = [await guest.recv("call.participant_joined") for _ in range(2)]
    assert [(j["peer"], j["role"], j["offer"]) for j in met] == [("citizen", "citizen", False), ("clerk", "clerk", False)]
    assert met[1]["label"] == call.clerk.inbox[0]["staff_name"]  # the clerk's tile shows their name
    for side in (call.kiosk, call.clerk):
        joined = await side.recv("call.participant_joined")
        assert (joined["peer"], joined["role"], joined["label"], joined["offer"]) == (
            status["peer"], "interpreter", "Dolmetscherin Türkisch", True)
    assert (await call.clerk.recv("guest.status"))["state"] == "in_call"

    g = status["peer"]
    # citizen -> guest: the kiosk offers, the guest answers; candidates both ways; peer says who sent it.
    await call.kiosk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    offer = await guest.recv("rtc.offer")
    assert (offer["peer"], offer["sdp"]) == ("citizen", SDP)
    await guest.send(type="rtc.answer", visit_id=call.visit_id, peer="citizen", sdp=SDP)
    assert (await call.kiosk.recv("rtc.answer"))["peer"] == g
    await call.kiosk.send(type="rtc.candidate", visit_id=call.visit_id, peer=g, candidate=CANDIDATE)
    assert (await guest.recv("rtc.candidate"))["peer"] == "citizen"
    await guest.send(type="rtc.candidate", visit_id=call.visit_id, peer="citizen", candidate=CANDIDATE)
    got = await call.kiosk.recv("rtc.candidate")
    assert (got["peer"], got["candidate"]) == (g, CANDIDATE)
    # clerk -> guest: the clerk offers.
    await call.clerk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await guest.recv("rtc.offer"))["peer"] == "clerk"
    await guest.send(type="rtc.answer", visit_id=call.visit_id, peer="clerk", sdp=SDP)
    assert (await call.clerk.recv("rtc.answer"))["peer"] == g
    await guest.send(type="rtc.candidate", visit_id=call.visit_id, peer="clerk", candidate=CANDIDATE)
    assert (await call.clerk.recv("rtc.candidate"))["peer"] == g

    # The citizen-clerk pair is untouched: its messages still carry no peer.
    await call.kiosk.send(type="rtc.candidate", visit_id=call.visit_id, candidate=CANDIDATE)
    assert (await call.clerk.recv("rtc.candidate"))["peer"] is None
    assert await guest.quiet() == []


async def test_a_guest_pair_that_fails_does_not_end_the_call(central):
    central.hub.call_connect_timeout_s = 60
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    for side, to in ((call.kiosk, g), (call.clerk, g), (guest, "citizen")):
        await side.send(type="rtc.state", visit_id=call.visit_id, peer=to, state="failed")
    for side in (call.kiosk, call.clerk, guest):
        await side.send(type="ping")
        assert [f["type"] for f in await side.quiet(0.3) if f["type"] not in ("call.participant_joined",
                                                                              "guest.status")] == ["pong"]
    assert central.hub.rooms.get(call.visit_id).state.value == "in_call"
    assert call.visit_id in central.hub._media  # only the citizen's own connection stops the media timer
    await call.kiosk.send(type="rtc.state", visit_id=call.visit_id, peer=g, state="connected")
    await call.kiosk.send(type="ping")
    await call.kiosk.recv("pong")
    assert call.visit_id in central.hub._media


async def test_the_clerk_removes_a_guest_and_the_call_goes_on(central):
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    await call.kiosk.recv("call.participant_joined")
    await call.clerk.send(type="guest.remove", visit_id=call.visit_id, peer=g)

    assert (await guest.recv("guest.removed"))["visit_id"] == call.visit_id
    assert (await guest.ws.receive()).type.name in ("CLOSE", "CLOSING", "CLOSED")
    for side in (call.kiosk, call.clerk):
        left = await side.recv("call.participant_left")
        assert (left["visit_id"], left["peer"]) == (call.visit_id, g)
    gone = await call.clerk.recv("guest.status")
    assert (gone["peer"], gone["state"], gone["reason"]) == (g, "gone", "removed")
    # The call goes on between citizen and clerk; the guest's pair is gone.
    await call.kiosk.send(type="rtc.candidate", visit_id=call.visit_id, candidate=CANDIDATE)
    assert (await call.clerk.recv("rtc.candidate"))["visit_id"] == call.visit_id
    await call.kiosk.send(type="rtc.candidate", visit_id=call.visit_id, peer=g, candidate=CANDIDATE)
    assert (await call.kiosk.recv("error"))["code"] == "unknown_peer"
    assert len(central.hub.guest_links) == 0


async def test_a_guest_who_leaves_or_is_lost_is_gone_for_everyone(central):
    call = await call_in_progress(central)
    first, g1 = await admitted_guest(central, call)
    await first.send(type="guest.leave", visit_id=call.visit_id)
    assert (await call.kiosk.recv("call.participant_left"))["peer"] == g1
    gone = await call.clerk.recv("guest.status")
    assert (gone["peer"], gone["state"], gone["reason"]) == (g1, "gone", "left")

    second, g2 = await admitted_guest(central, call)
    await second.ws.close()  # and does not come back within the resume grace (1 s here; tests/central/test_guest_rejoin.py)
    assert (await call.kiosk.recv("call.participant_left"))["peer"] == g2
    assert (await call.clerk.recv("guest.status"))["away"] is True
    lost = await call.clerk.recv("guest.status")
    assert (lost["peer"], lost["state"], lost["reason"]) == (g2, "gone", "lost")
    assert central.hub.rooms.get(call.visit_id) is not None


async def test_a_second_guest_gets_the_first_guests_offer(central):
    call = await call_in_progress(central)
    first, g1 = await admitted_guest(central, call, "interpreter", "Dolmetscher")
    second, g2 = await admitted_guest(central, call, "colleague", "Herr Kollege")
    met = [await second.recv("call.participant_joined") for _ in range(3)]
    assert [(j["peer"], j["offer"]) for j in met] == [("citizen", False), ("clerk", False), (g1, False)]
    while (joined := await first.recv("call.participant_joined"))["peer"] != g2:
        pass
    assert (joined["role"], joined["label"], joined["offer"]) == ("colleague", "Herr Kollege", True)

    await second.send(type="rtc.offer", visit_id=call.visit_id, peer=g1, sdp=SDP)  # the later one answers
    assert (await second.recv("error"))["code"] == "wrong_state"
    await first.send(type="rtc.offer", visit_id=call.visit_id, peer=g2, sdp=SDP)
    assert (await second.recv("rtc.offer"))["peer"] == g1
    await second.send(type="rtc.answer", visit_id=call.visit_id, peer=g1, sdp=SDP)
    assert (await first.recv("rtc.answer"))["peer"] == g2


async def test_a_console_that_reconnects_hears_of_its_guests_again(central):
    central.hub.resume_grace_s = 60  # the test's default of 1 s may pass while the clerk logs in again
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    waiting = await invite(call, "colleague", "")
    await call.clerk.ws.close()
    clerk = await central.clerk()
    assert (await clerk.recv("call.assigned"))["resumed"] is True
    statuses = {s["peer"]: s for s in [await clerk.recv("guest.status") for _ in range(2)]}
    assert statuses[g]["state"] == "in_call"
    assert (statuses[waiting["peer"]]["state"], statuses[waiting["peer"]]["link"]) == ("invited", waiting["link"])
    joined = await clerk.recv("call.participant_joined")
    assert (joined["peer"], joined["offer"]) == (g, True)  # the console offers afresh; the guest replaces the pair
    await clerk.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await guest.recv("rtc.offer"))["peer"] == "clerk"


async def test_a_visitor_from_home_has_guests_like_a_kiosk(central):
    browser, queued = await queued_at_home(central)
    clerk = await central.clerk()
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await clerk.recv("call.assigned")
    await browser.recv("call.start")
    call = Call(clerk, browser, queued["visit_id"])
    guest, g = await admitted_guest(central, call)
    joined = await browser.recv("call.participant_joined")
    assert (joined["peer"], joined["offer"]) == (g, True)
    await browser.send(type="rtc.offer", visit_id=call.visit_id, peer=g, sdp=SDP)
    assert (await guest.recv("rtc.offer"))["peer"] == "citizen"
    await guest.send(type="rtc.answer", visit_id=call.visit_id, peer="citizen", sdp=SDP)
    assert (await browser.recv("rtc.answer"))["peer"] == g
    await guest.send(type="rtc.candidate", visit_id=call.visit_id, peer="citizen", candidate=CANDIDATE)
    assert (await browser.recv("rtc.candidate"))["peer"] == g

    await clerk.send(type="guest.remove", visit_id=call.visit_id, peer=g)
    assert (await browser.recv("call.participant_left"))["peer"] == g
    await browser.send(type="rtc.candidate", visit_id=call.visit_id, candidate=CANDIDATE)
    assert (await clerk.recv("rtc.candidate"))["peer"] is None  # the citizen-clerk pair goes on
