"""A call of three through the real central: the kiosk appliance (fake hardware, Pi 4 passthrough), the clerk
on the staff socket and an interpreter let in by a one-time link on the guest socket. The clerk's and the
interpreter's media are aiortc peers, so this is about the kiosk and central's routing of each pair: each of
the three receives moving pictures and sound from both others; the interpreter is removed and the call goes on.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCSessionDescription

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.service.main import start
from tests.appliance.mesh_rig import Remote, moving
from tests.appliance.test_speaker_mix import strength
from tests.browser import require_isolated_network
from tests.central.guest_calls import Call, admitted_guest
from tests.polling import until, view_until

CLERK_PITCH, GUEST_PITCH = 500, 1200


class Offering(Remote):
    """The clerk's side of the clerk-interpreter pair: the clerk offers to guests."""

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))


@pytest.fixture
async def appliance(central, tmp_path):
    require_isolated_network()
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"], kiosk_port=0,
                             data_dir=tmp_path, ice_networks=("127.0.0.0/8",),
                             hardware={"backend": "fake", "camera": {"encoded": True}})
    unit = await start(config)
    yield unit
    await unit.close()


async def relay_offer(offerer, answerer, visit_id: str, to: str | None, back: str | None, remote: Remote) -> None:
    """The next rtc.offer ``offerer`` gets (from ``back``), answered by ``remote`` through ``answerer``'s socket."""
    offer = await answerer.recv("rtc.offer")
    assert offer.get("peer") == back
    await answerer.send(type="rtc.answer", visit_id=visit_id, sdp=await remote.answer(offer["sdp"]),
                        **({"peer": back} if back else {}))


async def test_kiosk_clerk_and_interpreter_each_see_and_hear_both_others_then_the_interpreter_leaves(central,
                                                                                                 appliance):
    clerk = await central.clerk()
    clerk_sees_citizen, clerk_sees_guest = Remote("clerk", CLERK_PITCH), Offering("clerk", CLERK_PITCH)
    guest_sees_citizen, guest_sees_clerk = Remote("guest", GUEST_PITCH), Remote("guest", GUEST_PITCH)
    pcs = [clerk_sees_citizen, clerk_sees_guest, guest_sees_citizen, guest_sees_clerk]
    try:
        await view_until(appliance, lambda v: v.online)
        appliance.controller.post("choose", "buergerbuero")
        await view_until(appliance, lambda v: v.screen is Screen.CONSENT)
        appliance.controller.post("confirm")
        visit_id = (await clerk.recv("queue.joined"))["visit"]["visit_id"]
        await clerk.send(type="visit.pickup", visit_id=visit_id)
        await clerk.recv("call.assigned")
        await relay_offer(appliance, clerk, visit_id, None, None, clerk_sees_citizen)  # the kiosk offers
        await view_until(appliance, lambda v: v.screen is Screen.IN_CALL)

        guest, g = await admitted_guest(central, Call(clerk, None, visit_id), "interpreter", "Dolmetscherin (Arabisch)")
        # The kiosk offers to the interpreter; the clerk offers to them as well.
        await relay_offer(appliance, guest, visit_id, "citizen", "citizen", guest_sees_citizen)
        joined = [m for m in clerk.inbox if m["type"] == "call.participant_joined"]  # came with the admission
        assert [(m["peer"], m["offer"]) for m in joined] == [(g, True)]
        await clerk.send(type="rtc.offer", visit_id=visit_id, peer=g, sdp=await clerk_sees_guest.offer())
        await relay_offer(clerk, guest, visit_id, "clerk", "clerk", guest_sees_clerk)
        answer = await clerk.recv("rtc.answer")
        assert answer["peer"] == g
        await clerk_sees_guest.accept(answer["sdp"])
        await view_until(appliance, lambda v: [p.peer for p in v.participants] == [g])

        # Each of the three gets moving pictures and sound from both others.
        assert moving(await clerk_sees_citizen.pictures(15)) and moving(await guest_sees_citizen.pictures(15))
        assert moving(await clerk_sees_guest.pictures(10)) and moving(await guest_sees_clerk.pictures(10))
        for pc in pcs:
            assert len(await pc.audio_frames(5)) == 5
        feed = appliance.guest_video.feed(g)
        await until(lambda: feed.stats["frames_in"] > 10, 20, what="the interpreter's picture for the kiosk page")
        speaker = appliance.hardware.speaker

        def kiosk_hears_both() -> bool:
            sound = speaker.played()[-48000:].astype(np.float64)
            return len(sound) == 48000 and strength(sound, GUEST_PITCH) > 0.05 * strength(sound, CLERK_PITCH) > 0
        await until(kiosk_hears_both, 20, what="the clerk's and the interpreter's voices on the kiosk's speaker")
        assert appliance.controller.view.participants[0].role == "interpreter"

        # The clerk removes the interpreter: their tile goes, the call of two goes on.
        await clerk.send(type="guest.remove", visit_id=visit_id, peer=g)
        await view_until(appliance, lambda v: v.participants == ())
        await until(lambda: g not in appliance.controller._call.guests, 10, what="the kiosk closing the pair")
        await asyncio.sleep(1)
        assert moving(await clerk_sees_citizen.pictures(30)) and len(await clerk_sees_citizen.audio_frames(5)) == 5
        assert appliance.controller.view.screen is Screen.IN_CALL
    finally:
        for pc in pcs:
            await pc.close()
