"""A real call across two centrals: the kiosk (the appliance's own WebRTC end, aiortc, fake camera and
microphone) connects to the central that does not lead, the clerk's console (aiortc as well) to the leader;
the signaling is relayed through a real Redis, and picture and sound then flow both ways over loopback,
peer to peer, as they would without any relay (docs/decisions/0008-several-centrals.md)."""
from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.sim.kiosk import Received, SimulatedKiosk
from tests.central.leadership_helpers import seeded_database, two_centrals, until_status
from tests.central.test_relay import DEPARTMENT, clerk
from tests.polling import until

FRAMES = 10  # of each kind, each way: the call carries picture and sound, not just one packet


def counting(received: Received, track: MediaStreamTrack) -> None:
    async def count() -> None:
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    received.video_frames += 1
                else:
                    received.audio_frames += 1
        except MediaStreamError:
            pass
    asyncio.get_running_loop().create_task(count())


async def test_picture_and_sound_flow_both_ways_between_a_kiosk_on_one_central_and_a_clerk_on_the_other(
        request, redis_client):
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (runners, (leader, edge)):
        await until_status(edge, 200, path="/health/ws")
        kiosk = SimulatedKiosk(edge, credentials["kiosk_token"], width=320, height=240)
        staff = await clerk(leader, "sachbearbeiterin", credentials["clerk_password"])
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN server: loopback only
        at_clerk = Received()
        pc.on("track", lambda track: counting(at_clerk, track))
        try:
            await kiosk.start()
            assert runners[1].app["edge"].relayed  # the kiosk is on the edge ...
            await kiosk.request(DEPARTMENT)
            visit_id = (await kiosk.next_event("visit.queued")).visit_id
            await staff.recv("queue.joined")  # ... and the clerk on the leader sees it
            await staff.send(type="visit.pickup", visit_id=visit_id)
            assigned = await staff.recv("call.assigned")
            assert assigned["ice_servers"] == []  # never a public default

            offer = await staff.recv("rtc.offer")  # the kiosk's, relayed
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            pc.addTrack(TestPatternTrack(320, 240, 15))
            pc.addTrack(SyntheticMicrophoneTrack())
            await pc.setLocalDescription(await pc.createAnswer())
            await staff.send(type="rtc.answer", visit_id=visit_id, sdp=pc.localDescription.sdp)

            await until(lambda: min(kiosk.received.video_frames, kiosk.received.audio_frames,
                                    at_clerk.video_frames, at_clerk.audio_frames) >= FRAMES, 30,
                        what="picture and sound both ways")
            assert pc.connectionState == "connected"
            await staff.send(type="visit.hangup", visit_id=visit_id)
            assert (await kiosk.next_event("visit.ended")).reason == "hangup_staff"
            assert not runners[0].app["hub"].rooms.all()
        finally:
            await pc.close()
            await kiosk.stop()
            await staff.session.close()
