"""A kiosk in a call with the clerk and a guest (an interpreter): one peer connection each, the camera's
picture encoded once for both, the guests' voices mixed into what the speaker plays, and a guest who
leaves or whose connection fails leaves the call with the clerk as it was (real aiortc peers over loopback).
"""
from __future__ import annotations

import asyncio

from aiortc import RTCRtpSender

from tests.appliance.mesh_rig import KioskMesh, Remote, moving
from tests.appliance.test_speaker_mix import played, strength
from tests.browser import require_isolated_network

VP8_ONLY = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]


async def test_clerk_and_guest_both_see_the_pi4_cameras_h264_encoded_once():
    require_isolated_network()
    kiosk, clerk, guest = KioskMesh(encoded=True), Remote("clerk", 440), Remote("guest", 660)
    try:
        await kiosk.call_clerk(clerk)
        assert kiosk.call.clerk.video_codec == "video/h264"
        encoder = kiosk.camera._encoder
        asked_before = encoder.keyframes_requested
        await kiosk.add_guest("g-interpreter1", guest)
        assert kiosk.call.guests["g-interpreter1"].video_codec == "video/h264"
        # The joining guest made the camera's encoder send a key frame at once, not at its next period.
        assert encoder.keyframes_requested > asked_before
        assert moving(await guest.pictures(20)) and moving(await clerk.pictures(20))
        # Both peers get the camera's own packets: one camera encoder, fed once, whatever the number of peers;
        # every packet the clerk's sender takes goes to the guest as well.
        assert kiosk.call.video.encoder is None and kiosk.camera.encoded
        assert kiosk.call.video.stats["items_out"] >= kiosk.call.video.stats["items_in"] - 30
        # ... and packetised once: while both peers take them, the second sender to take an item takes the
        # RTP payloads the first one's packetising gave (without sharing, nothing would be reused; the margin
        # is for items in flight at either end of the stretch and a sender left behind on a busy machine).
        packers = (kiosk.call.video.packer, kiosk.call.audio.packer)
        before = [(p.packed, p.reused) for p in packers]
        assert moving(await guest.pictures(20))
        for packer, (packed, reused) in zip(packers, before, strict=True):
            assert packer.packed - packed > 15 and packer.reused - reused >= (packer.packed - packed) // 2
        guest_audio = await guest.audio_frames(10)
        assert all(frame.sample_rate == 48000 for frame in guest_audio)
    finally:
        await kiosk.close()
        await clerk.close()
        await guest.close()
    assert kiosk.states["clerk"] == ["connected"] and kiosk.states["g-interpreter1"] == ["connected"]


async def test_with_vp8_the_picture_is_encoded_once_here_for_clerk_and_guest():
    require_isolated_network()
    kiosk = KioskMesh(encoded=True, size=(1280, 720))  # a Pi 4's picture, scaled to the VP8 fallback's size
    clerk, guest = Remote("clerk", 440, VP8_ONLY), Remote("guest", 660)  # the clerk's browser has no H.264
    try:
        await kiosk.call_clerk(clerk)
        assert kiosk.call.clerk.video_codec == "video/vp8"
        await kiosk.add_guest("g-colleague01", guest)
        assert kiosk.call.guests["g-colleague01"].video_codec == "video/vp8"
        assert moving(await guest.pictures(15)) and moving(await clerk.pictures(15))
        fanout = kiosk.call.video
        assert fanout.encoder is not None
        # Every frame the camera gave was encoded once, and each of the two peers was sent it.
        assert fanout.encoder.frames >= fanout.stats["items_in"] - 2
        assert fanout.stats["items_out"] >= 2 * fanout.encoder.frames - 4
    finally:
        await kiosk.close()
        await clerk.close()
        await guest.close()


async def test_the_speaker_plays_the_clerk_and_the_guest_mixed():
    require_isolated_network()
    kiosk, clerk, guest = KioskMesh(encoded=True), Remote("clerk", 440), Remote("guest", 660)
    try:
        await kiosk.call_clerk(clerk)
        await kiosk.add_guest("g-interpreter1", guest)
        mix = kiosk.playing[0]
        async with asyncio.timeout(20):
            while mix.mixed_frames < 10:  # the guest's voice arrived; here the test pulls what the speaker would play
                await mix.recv()
            sound = await played(mix, 50)
        assert mix.guests == ["g-interpreter1"]
        assert strength(sound, 660) > 0.1 * strength(sound, 440)  # the guest's tone beside the clerk's
        # The guest's voice was decoded in the mix as its packets came, not by a decoder thread of aiortc's.
        assert mix._voices["g-interpreter1"].receiver is not None
    finally:
        await kiosk.close()
        await clerk.close()
        await guest.close()


async def test_a_guest_who_leaves_or_fails_leaves_the_call_with_the_clerk_going_on():
    require_isolated_network()
    kiosk, clerk = KioskMesh(encoded=True), Remote("clerk", 440)
    first, second = Remote("guest", 660), Remote("guest", 880)
    try:
        await kiosk.call_clerk(clerk)
        await kiosk.add_guest("g-interpreter1", first)
        await kiosk.add_guest("g-colleague01", second)
        assert moving(await first.pictures(10)) and moving(await second.pictures(10))
        await kiosk.call.remove_guest("g-interpreter1")
        await second.close()  # the colleague's browser is gone without a word
        assert list(kiosk.call.guests) == ["g-colleague01"]
        assert moving(await clerk.pictures(30))
        assert kiosk.states["clerk"] == ["connected"]  # the clerk's pair never failed
        await kiosk.call.remove_guest("g-colleague01")  # central said so
        assert kiosk.call.video.branches == 0  # the camera's packets go to the clerk alone
        assert moving(await clerk.pictures(10))
    finally:
        await kiosk.close()
        await clerk.close()
        await first.close()
