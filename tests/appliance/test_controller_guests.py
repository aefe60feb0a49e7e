"""Guests in the kiosk's call, as the controller handles them: central says who joins and leaves, the
kiosk offers to each guest, relays their pair's signalling with ``peer``, shows a tile per guest, and a
guest's failed connection never ends the call (central played by the test)."""
from __future__ import annotations

import pytest

from appliance.controller.machine import Timeouts
from appliance.controller.view import Participant, Screen
from protocol import messages as m
from tests.appliance.controller_rig import TOKEN, VISIT, FakeCall, Rig, to_waiting

CANDIDATE = {"candidate": "candidate:1 1 udp 1 127.0.0.2 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


class FakeMeshCall(FakeCall):
    """The test plays each guest's pair: ``guest_report(peer, "connected" | "failed")``."""

    def __init__(self, ice_servers, on_state):
        super().__init__(ice_servers, on_state)
        self.guests: dict[str, dict] = {}
        self.removed: list[str] = []
        self.on_guest_state = None

    async def add_guest(self, peer: str) -> str:
        self.guests[peer] = {"answer": None, "candidates": []}
        return f"v=0\r\no=- {len(self.guests)} 0 IN IP4 127.0.0.1\r\ns=guest {peer}\r\n"

    async def accept_guest_answer(self, peer: str, sdp: str) -> None:
        self.guests[peer]["answer"] = sdp

    async def add_guest_candidate(self, peer: str, candidate) -> None:
        self.guests[peer]["candidates"].append(candidate)

    async def remove_guest(self, peer: str) -> None:
        self.guests.pop(peer, None)
        self.removed.append(peer)

    def guest_report(self, peer: str, state: str) -> None:
        self.on_guest_state(peer, state)


class MeshRig(Rig):
    def _call(self, servers, on_state):
        self.calls.append(FakeMeshCall(servers, on_state))
        return self.calls[-1]


@pytest.fixture
async def rig():
    r = MeshRig(Timeouts(choosing_s=0.2, consent_s=0.2, ended_s=0.2, notice_s=0.2, request_s=0.3, media_s=60))
    yield r
    r.task.cancel()


async def in_call(rig) -> FakeMeshCall:
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    await rig.central(type="rtc.answer", visit_id=VISIT, sdp="v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    rig.calls[0].report("connected")
    await rig.c.settle()
    return rig.calls[0]


async def joins(rig, peer="g-interpreter1", role="interpreter", label="Dolmetscherin (Arabisch)"):
    return await rig.central(type="call.participant_joined", visit_id=VISIT, peer=peer, role=role, label=label,
                             offer=True)


async def test_a_guest_who_joins_gets_an_offer_and_a_tile_and_their_signalling_reaches_their_pair(rig):
    call = await in_call(rig)
    view = await joins(rig)
    assert view.participants == (Participant("g-interpreter1", "interpreter", "Dolmetscherin (Arabisch)"),)
    offer = rig.sent[-1]
    assert offer.type == "rtc.offer" and offer.peer == "g-interpreter1" and "guest g-interpreter1" in offer.sdp
    await rig.central(type="rtc.answer", visit_id=VISIT, peer="g-interpreter1", sdp="v=0\r\ns=guest answer\r\n")
    await rig.central(type="rtc.candidate", visit_id=VISIT, peer="g-interpreter1", candidate=CANDIDATE)
    assert call.guests["g-interpreter1"]["answer"].endswith("guest answer\r\n")
    assert len(call.guests["g-interpreter1"]["candidates"]) == 1
    assert call.answer == "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" and call.candidates == []  # the clerk's pair: untouched
    call.guest_report("g-interpreter1", "connected")
    await rig.c.settle()
    assert rig.sent[-1] == m.RtcState(type="rtc.state", visit_id=VISIT, peer="g-interpreter1", state="connected")


async def test_two_guests_each_get_a_tile_and_the_one_who_leaves_loses_theirs(rig):
    call = await in_call(rig)
    await joins(rig)
    view = await joins(rig, "g-colleague01", "colleague", "Frau Weber, Standesamt")
    assert [p.role for p in view.participants] == ["interpreter", "colleague"]
    view = await rig.central(type="call.participant_left", visit_id=VISIT, peer="g-interpreter1")
    assert [p.peer for p in view.participants] == ["g-colleague01"] and call.removed == ["g-interpreter1"]
    assert view.screen is Screen.IN_CALL and not call.closed


async def test_a_guests_failed_connection_is_told_to_central_and_the_call_goes_on(rig):
    call = await in_call(rig)
    await joins(rig)
    call.guest_report("g-interpreter1", "failed")
    await rig.c.settle()
    assert rig.sent[-1] == m.RtcState(type="rtc.state", visit_id=VISIT, peer="g-interpreter1", state="failed")
    assert rig.c.view.screen is Screen.IN_CALL and not call.closed
    assert not any(msg.type == "rtc.state" and msg.peer is None and msg.state == "failed" for msg in rig.sent)


async def test_a_guest_joining_again_gets_a_fresh_offer_and_one_tile(rig):
    call = await in_call(rig)
    await joins(rig)
    view = await joins(rig)
    assert len(view.participants) == 1 and list(call.guests) == ["g-interpreter1"]
    assert [msg.peer for msg in rig.sent if msg.type == "rtc.offer"] == [None, "g-interpreter1", "g-interpreter1"]


async def test_the_end_of_the_call_closes_every_pair_and_forgets_the_guests(rig):
    call = await in_call(rig)
    await joins(rig)
    view = await rig.central(type="visit.ended", visit_id=VISIT, reason="hangup_staff")
    assert call.closed and view.participants == () and view.screen is Screen.ENDED


async def test_signalling_for_a_guest_not_in_the_call_is_ignored(rig):
    call = await in_call(rig)
    await rig.central(type="rtc.answer", visit_id=VISIT, peer="g-stranger01", sdp="v=0\r\ns=stranger\r\n")
    await rig.central(type="call.participant_left", visit_id=VISIT, peer="g-stranger01")
    assert call.guests == {} and rig.c.view.screen is Screen.IN_CALL and call.answer.startswith("v=0\r\no=- 1 1")
