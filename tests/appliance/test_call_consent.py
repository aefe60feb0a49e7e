"""A call survives a kiosk that reads the clerk's answers to its ICE consent checks late, and still ends
when the clerk's side stops answering (RFC 7675; appliance/call/consent.py). Real aiortc on both sides
over loopback; the clerk's side holds back or drops its answers to the kiosk's checks, which is what a
kiosk that falls behind or a clerk who is gone look like from the kiosk. Timings shortened: a check
every 0.2 s, consent for 3 s (slack for a loaded test machine, where both peers share one event loop)."""
from __future__ import annotations

import asyncio

from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from appliance.call.consent import STUN_RTO_S, ConsentTiming
from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from tests.browser import require_isolated_network

TIMING = ConsentTiming(interval_s=0.2, window_s=3.0)


def hold_back_answers(clerk: RTCPeerConnection, delay_s: float | None) -> None:
    """The clerk's side answers the kiosk's STUN checks ``delay_s`` late (None: never)."""
    connection = clerk.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in connection._protocols:
        send = protocol.send_stun

        def held(message, addr, send=send):
            if message.message_class != stun.Class.RESPONSE:
                send(message, addr)
            elif delay_s is not None:
                asyncio.get_running_loop().call_later(delay_s, send, message, addr)
        protocol.send_stun = held


async def connected_call():
    require_isolated_network()
    states: list[str] = []
    connected, failed = asyncio.Event(), asyncio.Event()

    def on_state(state: str) -> None:
        states.append(state)
        (failed if state == "failed" else connected).set()

    kiosk = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()], on_state=on_state,
                     ice_networks=("127.0.0.0/8",), consent=TIMING)
    clerk = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    clerk.on("track", clerk.addTrack)
    await clerk.setRemoteDescription(RTCSessionDescription(await kiosk.offer(), "offer"))
    await clerk.setLocalDescription(await clerk.createAnswer())
    await kiosk.accept_answer(clerk.localDescription.sdp)
    async with asyncio.timeout(20):
        await connected.wait()
    assert states == ["connected"]
    return kiosk, clerk, states, failed


async def test_checks_answered_later_than_aioice_waits_keep_the_call():
    kiosk, clerk, states, _ = await connected_call()
    try:
        hold_back_answers(clerk, 2 * STUN_RTO_S)  # aioice alone counts every one of these lost
        await asyncio.sleep(2 * TIMING.window_s)  # ~30 checks: long expired if late answers did not count
        consent = [c for c in kiosk.consent if c.checks]
        assert states == ["connected"] and kiosk.pc.connectionState == "connected"
        assert len(consent) == 1 and consent[0].checks >= 10
        assert consent[0].answered_late >= 5 and consent[0].slowest_s >= 2 * STUN_RTO_S
        assert not consent[0].expired
    finally:
        await kiosk.close()
        await clerk.close()


async def test_a_clerk_who_answers_no_more_ends_the_call_once_consent_expires():
    kiosk, clerk, states, failed = await connected_call()
    try:
        hold_back_answers(clerk, None)
        async with asyncio.timeout(TIMING.window_s + 3):
            await failed.wait()
        assert states == ["connected", "failed"] and [c for c in kiosk.consent if c.expired]
    finally:
        await kiosk.close()
        await clerk.close()


async def test_answered_checks_stay_within_rfc_7675s_window():
    assert ConsentTiming().retransmissions == 5  # 0.5 + 1 + 2 + 4 + 8 + 16 = 31.5 s >= 30 s
    assert ConsentTiming(window_s=1.5).retransmissions == 1  # 0.5 + 1
    assert TIMING.retransmissions == 2  # 0.5 + 1 + 2: an answer 1 s late has 2.5 s to spare
