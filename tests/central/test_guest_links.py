"""A guest link opens one call, once, while it lasts: revoked, reused, expired and foreign links, hostile
guests, and the limits on the public guest socket."""
from __future__ import annotations

import json

import aiohttp
import pytest

from central.live import guest_side
from tests.central.guest_calls import (
    CANDIDATE,
    SDP,
    admitted_guest,
    call_in_progress,
    guest_socket,
    hello,
    invite,
    secret_of,
)


async def _refused(guest) -> None:
    assert (await guest.recv())["type"] == "guest.refused"
    assert (await guest.ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_revoked_link_opens_nothing(central):
    call = await call_in_progress(central)
    status = await invite(call)
    await call.clerk.send(type="guest.remove", visit_id=call.visit_id, peer=status["peer"])
    gone = await call.clerk.recv("guest.status")
    assert (gone["state"], gone["reason"], gone["link"]) == ("gone", "revoked", None)
    guest, answer = await hello(central, status)
    assert answer == {"v": 1, "type": "guest.refused", "reason": "invalid_link"}
    assert (await guest.ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert await call.clerk.quiet() == []  # the clerk hears nothing of the attempt


async def test_a_link_opens_one_connection_only(central):
    call = await call_in_progress(central)
    status = await invite(call)
    first, welcome = await hello(central, status)
    assert welcome["type"] == "guest.welcome"
    second, answer = await hello(central, status)  # the same link again, while the first guest is there
    assert answer["type"] == "guest.refused"
    await first.send(type="guest.leave", visit_id=call.visit_id)
    third, answer = await hello(central, status)  # and after they left
    assert answer["type"] == "guest.refused"
    states = [s["state"] for s in call.clerk.inbox if s["type"] == "guest.status"]
    assert states == ["invited"] and [(await call.clerk.recv("guest.status"))["state"] for _ in range(2)] == [
        "joining", "gone"]


@pytest.mark.parametrize("how", ["hangup_staff", "hangup_kiosk", "transferred", "call_failed"])
async def test_when_the_call_is_over_its_guests_and_links_are_too(central, how):
    central.hub.call_connect_timeout_s = 60
    call = await call_in_progress(central)
    guest, _ = await admitted_guest(central, call)
    unused = await invite(call, "colleague")
    if how == "hangup_staff":
        await call.clerk.send(type="visit.hangup", visit_id=call.visit_id)
    elif how == "hangup_kiosk":
        await call.kiosk.send(type="visit.hangup", visit_id=call.visit_id)
    elif how == "transferred":
        await call.clerk.send(type="visit.transfer", visit_id=call.visit_id, department="standesamt")
    else:
        await call.kiosk.send(type="rtc.state", visit_id=call.visit_id, state="failed")

    while (told := await guest.recv())["type"] == "call.participant_joined":
        pass
    if how == "call_failed":
        assert (told["type"], told["reason"], told["position"]) == ("call.failed", "ice_failed", None)
    else:
        assert (told["type"], told["visit_id"], told["reason"]) == ("visit.ended", call.visit_id, how)
    assert (await guest.ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    late, answer = await hello(central, unused)  # the unused link of that call
    assert answer["type"] == "guest.refused"
    assert len(central.hub.guest_links) == 0  # nothing of the guests is kept


async def test_a_link_never_leads_into_another_call(central):
    ours = await call_in_progress(central)
    other = await call_in_progress(central, await central.new_clerk("zweite", ["buergerbuero"]),
                                   await central.new_kiosk("Bibliothek"))
    guest, g = await admitted_guest(central, ours)
    theirs, t = await admitted_guest(central, other)

    # The guest names the other call, or a participant of it: refused, and nothing reaches it.
    await guest.send(type="rtc.answer", visit_id=other.visit_id, peer="citizen", sdp=SDP)
    assert (await guest.recv("error"))["code"] == "not_your_visit"
    await guest.send(type="guest.ready", visit_id=other.visit_id)
    assert (await guest.recv("error"))["code"] == "not_your_visit"
    await guest.send(type="rtc.candidate", visit_id=ours.visit_id, peer=t, candidate=CANDIDATE)
    assert (await guest.recv("error"))["code"] == "unknown_peer"
    # The other call's clerk and kiosk cannot reach our guest either.
    await other.clerk.send(type="guest.remove", visit_id=other.visit_id, peer=g)
    assert (await other.clerk.recv("error"))["code"] == "unknown_peer"
    await other.clerk.send(type="guest.admit", visit_id=ours.visit_id, peer=g)
    assert (await other.clerk.recv("error"))["code"] == "not_your_visit"
    await other.clerk.send(type="guest.invite", visit_id=ours.visit_id, role="colleague")
    assert (await other.clerk.recv("error"))["code"] == "not_your_visit"
    await other.kiosk.send(type="rtc.offer", visit_id=other.visit_id, peer=g, sdp=SDP)
    assert (await other.kiosk.recv("error"))["code"] == "unknown_peer"
    await other.kiosk.send(type="rtc.offer", visit_id=ours.visit_id, peer=g, sdp=SDP)
    assert (await other.kiosk.recv("error"))["code"] == "not_your_visit"
    assert [f["type"] for f in await guest.quiet() if f["type"] == "rtc.offer"] == []
    assert [f["type"] for f in await theirs.quiet() if f["type"].startswith("rtc.")] == []


async def test_hostile_and_malformed_guest_messages_are_refused_and_change_nothing(central):
    call = await call_in_progress(central)
    status = await invite(call)
    guest = await guest_socket(central)
    for frame, code in [
        ("not json", "bad_json"),
        ('{"type": "visit.pickup", "department": "buergerbuero"}', "unknown_type"),
        (json.dumps({"type": "rtc.offer", "visit_id": call.visit_id, "peer": "citizen", "sdp": SDP}),
         "wrong_state"),  # before guest.hello
        ('{"type": "guest.hello", "link": "short"}', "invalid_field"),
        (json.dumps({"type": "guest.hello", "link": secret_of(status), "extra": 1}), "invalid_field"),
    ]:
        await guest.send_raw(frame)
        assert (await guest.recv())["code"] == code, frame
    await guest.send(type="guest.hello", link=secret_of(status))
    assert (await guest.recv())["type"] == "guest.welcome"
    await guest.send(type="guest.hello", link=secret_of(status))
    assert (await guest.recv())["code"] == "wrong_state"  # one link per connection
    await guest.send(type="rtc.answer", visit_id=call.visit_id, peer="citizen", sdp=SDP)
    assert (await guest.recv())["code"] == "wrong_state"  # not admitted yet
    await guest.send(type="guest.ready", visit_id=call.visit_id)
    await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=status["peer"])
    await guest.recv("guest.admitted")
    g = status["peer"]
    for message, code in [
        ({"type": "rtc.offer", "peer": "citizen", "sdp": SDP}, "wrong_state"),  # the citizen's side offers
        ({"type": "rtc.candidate", "candidate": CANDIDATE}, "invalid_field"),  # no peer
        ({"type": "rtc.candidate", "peer": g, "candidate": CANDIDATE}, "invalid_field"),  # itself
        ({"type": "rtc.candidate", "peer": "g-nobody-here", "candidate": CANDIDATE}, "unknown_peer"),
        ({"type": "visit.hangup"}, "unknown_type"),  # only citizen and clerk end the call
        ({"type": "guest.admit", "peer": g}, "unknown_type"),  # nor can a guest let anyone in
    ]:
        await guest.send(visit_id=call.visit_id, **message)
        assert (await guest.recv("error"))["code"] == code, message
    await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=g)
    assert (await call.clerk.recv("error"))["code"] == "wrong_state"  # already in
    await call.clerk.send(type="rtc.offer", visit_id=call.visit_id, sdp=SDP)
    assert (await call.clerk.recv("error"))["code"] == "wrong_state"  # the kiosk offers to the clerk
    assert central.hub.rooms.get(call.visit_id).state.value == "in_call"
    await guest.send(type="ping")
    assert (await guest.recv())["type"] == "pong"  # still connected and in the call


async def test_a_call_has_at_most_two_guests_and_invitations_are_limited(central):
    call = await call_in_progress(central)
    first = await invite(call)
    await invite(call, "colleague")
    await call.clerk.send(type="guest.invite", visit_id=call.visit_id, role="colleague")
    assert (await call.clerk.recv("error"))["code"] == "wrong_state"
    await call.clerk.send(type="guest.remove", visit_id=call.visit_id, peer=first["peer"])
    await call.clerk.recv("guest.status")
    await invite(call)  # room again; but revoking and inviting in a loop runs into the limit
    for _ in range(5):
        await call.clerk.send(type="guest.remove", visit_id=call.visit_id,
                              peer=next(iter(_guests(central, call))))
        await call.clerk.recv("guest.status")
        await call.clerk.send(type="guest.invite", visit_id=call.visit_id, role="colleague")
        answer = await call.clerk.recv()
        if answer["type"] == "error":
            break
    assert (answer["code"], answer["retry_after_s"] > 0) == ("rate_limited", True)


def _guests(central, call) -> dict:
    return {guest.peer: guest for guest in central.hub.guest_links.of_visit(call.visit_id)}


async def test_a_guest_floods_its_pair_and_is_held_back(central):
    call = await call_in_progress(central)
    guest, g = await admitted_guest(central, call)
    codes = []
    for _ in range(12):
        await guest.send(type="rtc.answer", visit_id=call.visit_id, peer="clerk", sdp=SDP)
    for _ in range(2):
        codes.append((await guest.recv("error"))["code"])
    assert codes == ["rate_limited", "rate_limited"]
    answers = [f for f in await call.clerk.quiet(0.3) if f["type"] == "rtc.answer"]
    assert len(answers) == 10  # CALL_SDP's burst; the rest never reached the clerk


async def test_the_public_guest_socket_is_limited_per_address_and_to_central_s_own_pages(central):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await guest_socket(central, origin="https://elsewhere.example")
    assert refused.value.status == 403
    opened = []
    with pytest.raises(aiohttp.WSServerHandshakeError) as limited:
        for _ in range(20):
            opened.append(await guest_socket(central))
    assert limited.value.status == 429 and len(opened) == 10


async def test_a_guest_socket_that_says_no_link_is_closed(central, monkeypatch):
    monkeypatch.setattr(guest_side, "HELLO_WITHIN_S", 0.2)
    guest = await guest_socket(central)
    assert (await guest.ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
