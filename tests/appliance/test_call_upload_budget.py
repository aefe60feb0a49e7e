"""The kiosk's upload budget (appliance/call/upload.py) with real aiortc peers over loopback: while a guest is in
the call, each copy of the citizen's picture gets its share of the budget, and all of it again once the guest
has left; the picture keeps moving for everybody throughout.

What arrives is measured at each peer (bytes of the picture's frames per second over a few seconds), with
generous bounds: the encoder's rate control and the machine's load both move it.
"""
from __future__ import annotations

import asyncio

from aiortc import RTCRtpSender

from appliance.call.upload import picture_share
from tests.appliance.mesh_rig import KioskMesh, Remote, moving
from tests.browser import require_isolated_network

VP8_ONLY = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
WINDOW_S = 3.0
SETTLE_S = 1.5  # a new bitrate reaches the wire within a frame or two; the rate control needs a moment more


async def both(clerk: Remote, guest: Remote) -> tuple[float, float]:
    return tuple(await asyncio.gather(clerk.picture_kbit_s(WINDOW_S), guest.picture_kbit_s(WINDOW_S)))


async def test_a_guest_halves_what_the_pi4_camera_sends_each_peer_and_leaving_gives_it_back():
    require_isolated_network()
    # The camera's H.264 fills its bitrate as a picture of a person does; the site's uplink takes 1.2 Mbit/s.
    kiosk = KioskMesh(encoded=True, bitrate=1_000_000, fill=True, upload_kbit_s=1200)
    clerk, guest = Remote("clerk", 440), Remote("guest", 660)
    try:
        await kiosk.call_clerk(clerk)
        await asyncio.sleep(SETTLE_S)
        alone = await clerk.picture_kbit_s(WINDOW_S)
        assert 600 < alone < 1500, f"the clerk alone gets the camera's whole 1 Mbit/s, not {alone:.0f} kbit/s"

        await kiosk.add_guest("g-interpreter1", guest)
        share = picture_share(1200, 2, 1_000_000)  # 456 kbit/s each
        await asyncio.sleep(SETTLE_S)
        assert kiosk.camera._encoder.bitrate == share == kiosk.call.upload.picture_bps
        at_clerk, at_guest = await both(clerk, guest)
        for who, got in (("clerk", at_clerk), ("guest", at_guest)):
            assert share / 1000 * 0.5 < got < alone * 0.7, (
                f"with a guest the {who} gets about {share // 1000} kbit/s (the clerk had {alone:.0f} alone), "
                f"not {got:.0f}")
        assert moving(await clerk.pictures(10)) and moving(await guest.pictures(10))

        await kiosk.call.remove_guest("g-interpreter1")
        await asyncio.sleep(SETTLE_S)
        assert kiosk.camera._encoder.bitrate == 1_000_000 == kiosk.call.upload.picture_bps
        again = await clerk.picture_kbit_s(WINDOW_S)
        print(f"H.264 picture at the clerk: {alone:.0f} kbit/s alone, {at_clerk:.0f} with the guest "
              f"({at_guest:.0f} at the guest), {again:.0f} after")
        assert again > alone * 0.75 and again > at_clerk * 1.4, (
            f"after the guest left the clerk gets the whole picture again ({alone:.0f} kbit/s before), not {again:.0f}")
        assert moving(await clerk.pictures(10))
    finally:
        await kiosk.close()
        await clerk.close()
        await guest.close()


async def test_with_vp8_the_kiosks_one_encoder_follows_the_budget_too():
    require_isolated_network()
    # A site with 0.7 Mbit/s up and a camera giving frames (a Pi 5, a USB camera): the kiosk encodes VP8, once.
    # The picture is grainy as a camera's, so the encoder needs the bitrate it is given; 15 fps, as the kiosk's
    # software VP8 runs (appliance/hardware/software_video.py), which also spares the busy test machine.
    kiosk = KioskMesh(encoded=False, size=(640, 360), fps=15, grain=6, upload_kbit_s=700)
    clerk, guest = Remote("clerk", 440, VP8_ONLY), Remote("guest", 660)
    try:
        await kiosk.call_clerk(clerk)
        assert kiosk.call.clerk.video_codec == "video/vp8"
        await kiosk.add_guest("g-colleague01", guest)
        encoder = kiosk.call.video.encoder
        assert encoder.bitrate == picture_share(700, 2, encoder.max_bitrate) < encoder.max_bitrate
        await asyncio.sleep(SETTLE_S)
        at_clerk, at_guest = await both(clerk, guest)
        assert moving(await clerk.pictures(10)) and moving(await guest.pictures(10))

        await kiosk.call.remove_guest("g-colleague01")
        assert encoder.bitrate == picture_share(700, 1, encoder.max_bitrate) > picture_share(700, 2, encoder.max_bitrate)
        await asyncio.sleep(SETTLE_S)
        again = await clerk.picture_kbit_s(WINDOW_S)
        print(f"VP8 picture at the clerk: {at_clerk:.0f} kbit/s with the guest ({at_guest:.0f} at the guest), "
              f"{again:.0f} after")
        assert again > at_clerk * 1.4, (
            f"after the guest left the clerk's picture gets the whole budget again: {again:.0f} kbit/s against "
            f"{at_clerk:.0f} (the guest had {at_guest:.0f}) while the guest was there")
        assert moving(await clerk.pictures(10))
    finally:
        await kiosk.close()
        await clerk.close()
        await guest.close()
