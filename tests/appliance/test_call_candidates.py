"""The kiosk's peer takes from the clerk's side only candidates naming the city's networks or its TURN
servers: in the answer's SDP and trickled (real aiortc peers over loopback)."""
from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection, RTCSessionDescription

from appliance.call.peer import CallPeer, candidate_policy
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from protocol import messages as m
from tests.browser import require_isolated_network

METADATA = "candidate:9 1 udp 2122260223 169.254.169.254 80 typ host"
LAN_PRINTER = "candidate:8 1 udp 2122260223 203.0.113.7 9100 typ host"  # outside the configured networks


def answer_with_extra_candidates(sdp: str, *lines: str) -> str:
    """The clerk's answer with more candidate lines after each media section's own."""
    out = []
    for line in sdp.split("\r\n"):
        out.append(line)
        if line.startswith("a=end-of-candidates") or line.startswith("a=ice-pwd:"):
            out.extend(f"a={extra}" for extra in lines)
    return "\r\n".join(out)


async def test_refused_candidates_never_reach_the_kiosks_ice_and_the_call_still_connects():
    require_isolated_network()
    state = asyncio.get_running_loop().create_future()
    kiosk = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()],
                     on_state=lambda s: state.done() or state.set_result(s), ice_networks=("127.0.0.0/8",))
    clerk = RTCPeerConnection()
    try:
        clerk.on("track", clerk.addTrack)
        await clerk.setRemoteDescription(RTCSessionDescription(await kiosk.offer(), "offer"))
        await clerk.setLocalDescription(await clerk.createAnswer())
        answer = answer_with_extra_candidates(clerk.localDescription.sdp, METADATA, LAN_PRINTER)
        assert "169.254.169.254" in answer
        await kiosk.accept_answer(answer)
        remote = kiosk.pc.remoteDescription.sdp
        assert "169.254.169.254" not in remote and "203.0.113.7" not in remote
        assert "127.0.0.2" in remote  # the clerk's real candidates stay

        await kiosk.add_candidate(m.Candidate(candidate=METADATA, sdpMid="0", sdpMLineIndex=0))
        ice = kiosk.pc.getTransceivers()[0].receiver.transport.transport
        assert {c.ip for c in ice.getRemoteCandidates()} == {"127.0.0.2"}
        assert kiosk.dropped_candidates >= 3  # two media sections' METADATA and LAN_PRINTER, and the trickled one
        async with asyncio.timeout(20):
            assert await state == "connected"
    finally:
        await kiosk.close()
        await clerk.close()


async def test_relay_candidates_may_name_the_turn_servers_address():
    turn = [m.IceServer(urls=["turn:10.9.8.7:3478?transport=udp"], username="u", credential="c")]
    policy = await candidate_policy(("192.168.0.0/16",), turn)
    relay = "candidate:5 1 udp 16777215 10.9.8.7 50000 typ relay raddr 0.0.0.0 rport 0"
    assert policy.allows(relay)
    assert not policy.allows(relay.replace("10.9.8.7", "10.9.8.8"))  # another address of that network
    assert not policy.allows(METADATA)
