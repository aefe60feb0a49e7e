"""A relay-only kiosk (its settings from central) talks to nobody but the TURN server: a real coturn on
loopback with central's time-limited credentials, real aiortc on both sides.

Runs twice where aiortc has iceTransportPolicy (1.15 on): with it, and with the kiosk's own filtering
that the image's older aiortc (Debian trixie's) uses.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from appliance.call.peer import NATIVE_RELAY_POLICY, CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from central.live.ice import IceServers, TurnRest, TurnSecret
from tests.browser import require_isolated_network
from tests.turn_server import coturn

POLICIES = [pytest.param(True, id="iceTransportPolicy"), pytest.param(False, id="own-filter")]


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.split("\r\n") if line.startswith("a=candidate:")]


def nominated(pc: RTCPeerConnection):
    """The candidate pair ICE settled on (aioice's, reached through aiortc's transport; no public API)."""
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    return connection._nominated.get(1)


def kiosk_peer(ice_servers, native: bool, on_state=None) -> CallPeer:
    return CallPeer(ice_servers, [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()], on_state=on_state,
                    ice_networks=("127.0.0.0/8",), relay_only=True, native_relay_policy=native)


def skip_native_if_missing(native: bool) -> None:
    if native and not NATIVE_RELAY_POLICY:
        pytest.skip("this aiortc has no RTCConfiguration.iceTransportPolicy (before 1.15); the own filter runs")


@pytest.mark.parametrize("native", POLICIES)
async def test_without_a_turn_server_a_relay_only_kiosk_offers_no_address_at_all(native):
    require_isolated_network()
    skip_native_if_missing(native)
    kiosk = kiosk_peer([], native)
    try:
        offer = await kiosk.offer()
        assert candidates(offer) == []
        assert "127.0.0.2" not in offer
    finally:
        await kiosk.close()


@pytest.mark.parametrize("native", POLICIES)
async def test_a_relay_only_kiosk_connects_through_coturn_with_centrals_credentials(native, tmp_path):
    require_isolated_network()
    skip_native_if_missing(native)
    with coturn(tmp_path, loopback_peers=True) as turn:
        ice = IceServers(turn=TurnRest((turn.url,), TurnSecret(turn.secret), lifetime_s=600))
        state = asyncio.get_running_loop().create_future()
        kiosk = kiosk_peer(ice.for_peer("kiosk-1"), native, lambda s: state.done() or state.set_result(s))
        clerk = RTCPeerConnection()  # no ICE servers: its own host candidates only
        ten_frames = asyncio.Event()

        async def count(track) -> None:
            for _ in range(10):
                await track.recv()
            ten_frames.set()

        clerk.on("track", lambda track: track.kind == "video" and asyncio.ensure_future(count(track)))
        try:
            offer = await kiosk.offer()
            lines = candidates(offer)
            assert lines and all(" typ relay" in line for line in lines), lines
            assert all(f" {turn.address} " in line for line in lines)  # coturn's relay address, nothing else
            assert "127.0.0.2" not in offer  # the kiosk's own address is in no line, not even as raddr
            await clerk.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            for transceiver in clerk.getTransceivers():
                if transceiver.kind == "video":
                    clerk.addTrack(TestPatternTrack(320, 240))
            await clerk.setLocalDescription(await clerk.createAnswer())
            await kiosk.accept_answer(clerk.localDescription.sdp)
            async with asyncio.timeout(20):
                assert await state == "connected"
                await ten_frames.wait()  # the kiosk's picture arrives, through the relay
            pair = nominated(clerk)
            assert pair.remote_candidate.type == "relay" and pair.remote_candidate.host == turn.address
            assert "ALLOCATE processed, success" in turn.log_text()
            # the clerk's media came in TURN's frames on the relay's socket, read as a busy kiosk reads it
            assert kiosk.catch_up.sockets >= 1 and kiosk.catch_up.media > 0
        finally:
            await kiosk.close()
            await clerk.close()


async def test_coturn_refuses_credentials_that_expired(tmp_path):
    require_isolated_network()
    with coturn(tmp_path, loopback_peers=True) as turn:
        rest = TurnRest((turn.url,), TurnSecret(turn.secret), lifetime_s=60)
        expired = IceServers(turn=rest, clock=lambda: time.time() - 120).for_peer("kiosk-1")
        kiosk = kiosk_peer(expired, native=False)
        try:
            assert candidates(await kiosk.offer()) == []  # no relay: coturn said 401
        finally:
            await kiosk.close()
        fresh = kiosk_peer(IceServers(turn=rest).for_peer("kiosk-1"), native=False)
        try:
            assert len(candidates(await fresh.offer())) >= 1
        finally:
            await fresh.close()
