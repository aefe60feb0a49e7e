"""A clerk on Firefox ESR (Debian's firefox-esr, no OpenH264, driven over WebDriver BiDi) calls the whole
appliance with fake hardware: from the kiosk whose camera gives frames (VP8 throughout) and from the
Pi 4 kiosk whose camera passes H.264 through (FakeCamera(encoded=True)), which now sends VP8 from the
camera's frames for this clerk. A Chromium clerk still gets the H.264 passthrough, and a browser that
takes none of the kiosk's video gets a call with sound and a word on both screens, not a call that
never connects.
"""
from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.hardware.fake.camera import read_clock
from appliance.service.main import start
from tests.browser import GREEN_JS, poll, require_isolated_network
from tests.e2e.clerk_steps import on_duty, pick_up
from tests.e2e.test_clerk_call import INBOUND_STATS_JS
from tests.firefox import firefox
from tests.polling import view_until

# The kiosk's picture as the clerk's page shows it: the green channel (the test pattern's luma where
# its clock is) of #remote-video at its own size.
REMOTE_VIDEO_JS = """() => {
""" + GREEN_JS + """
  const v = document.querySelector('#remote-video');
  if (!v || !v.videoWidth || v.readyState < 2) return null;
  return {w: v.videoWidth, h: v.videoHeight, luma: green(v, v.videoWidth, v.videoHeight)};
}"""

# A browser that can decode none of the kiosk's video codecs: the kiosk's offer reaches this Firefox
# without VP8 (and its repair format), so it is left with H.264, which it lacks, and answers
# m=video 0 as it did for the Pi 4 kiosk's H.264-only offer before.
WITHOUT_VP8_JS = """() => {
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (description) {
    if (description?.type !== 'offer') return original.call(this, description);
    const lines = description.sdp.split('\\r\\n');
    const vp8 = new Set(lines.map((l) => l.match(/^a=rtpmap:(\\d+) VP8\\//)).filter(Boolean).map((m) => m[1]));
    lines.forEach((l) => { const m = l.match(/^a=fmtp:(\\d+) apt=(\\d+)/); if (m && vp8.has(m[2])) vp8.add(m[1]); });
    const sdp = lines.filter((l) => !vp8.has((l.match(/^a=(?:rtpmap|fmtp|rtcp-fb):(\\d+)/) || [])[1]))
      .map((l) => l.startsWith('m=video') ? l.split(' ').filter((f, i) => i < 3 || !vp8.has(f)).join(' ') : l)
      .join('\\r\\n');
    return original.call(this, { type: 'offer', sdp });
  };
}"""


async def clock_of(clerk) -> int | None:
    shown = await clerk.evaluate(REMOTE_VIDEO_JS)
    if shown is None:
        return None
    return read_clock(np.frombuffer(base64.b64decode(shown["luma"]), np.uint8).reshape(shown["h"], shown["w"]))


async def moving_video(clerk) -> None:
    """The kiosk's test pattern arrives and its clock moves on (the picture is live)."""
    await poll(lambda: clerk.evaluate(INBOUND_STATS_JS), lambda s: s and s["video"] and s["video"]["framesDecoded"] > 20,
               seconds=40)
    first = await poll(lambda: clock_of(clerk), lambda c: c is not None)
    await poll(lambda: clock_of(clerk), lambda c: c is not None and 500 <= (c - first) % 2**32 <= 10_000)


async def sound_arrives(clerk) -> None:
    await poll(lambda: clerk.evaluate(INBOUND_STATS_JS),
               lambda s: s and s["audio"] and (s["audio"]["energy"] or 0) > 0, seconds=40)


async def appliance(central, tmp_path, camera: dict):
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake", "camera": camera}, kiosk_port=0, data_dir=tmp_path / "data")
    return await start(config, timeouts=Timeouts(ended_s=1.0))


async def citizen_waits(unit) -> None:
    """Press (choose), long press (the highlighted Bürgerbüro), press (consent): the citizen waits."""
    await view_until(unit, lambda v: v.online)
    button = unit.hardware.button
    await button.press()
    await view_until(unit, lambda v: v.screen.value == "choosing")
    await button.long_press()
    await view_until(unit, lambda v: v.screen.value == "consent")
    await button.press()
    await view_until(unit, lambda v: v.position is not None)


async def clerk_heard_at_the_kiosk(unit) -> None:
    speaker = unit.hardware.speaker
    await poll(lambda: asyncio.sleep(0, speaker.played()),
               lambda pcm: pcm.size > 48_000 // 2 and np.abs(pcm.astype(np.int32)).max() > 1000, seconds=40)


async def recorded_browser(central):
    """The clerk's browser as central stored it (written in the background, as the visit counters are)."""
    async with asyncio.timeout(10):
        while True:
            if seen := await central.db.staff_browsers.all():
                return next(iter(seen.values()))
            await asyncio.sleep(0.1)


# VP8 kiosk: the camera's 640x480 frames as they are. Pi 4 kiosk: a 1280x720 H.264 camera, whose frames
# reach Firefox at the VP8 fallback's 640x360 (where the test pattern's clock can be read again).
@pytest.mark.parametrize("camera,size", [({}, (640, 480)),
                                         ({"encoded": True, "width": 1280, "height": 720}, (640, 360))],
                         ids=["vp8-kiosk", "pi4-passthrough-kiosk"])
async def test_a_firefox_clerk_sees_and_hears_the_kiosk(central, tmp_path, camera, size):
    require_isolated_network()
    unit = await appliance(central, tmp_path, camera)
    try:
        async with firefox(tmp_path / "firefox") as clerk:
            await on_duty(clerk, central)
            await citizen_waits(unit)
            await pick_up(clerk)
            await view_until(unit, lambda v: v.screen.value == "in_call")

            await moving_video(clerk)
            shown = await clerk.evaluate(REMOTE_VIDEO_JS)
            assert (shown["w"], shown["h"]) == size
            await sound_arrives(clerk)
            await clerk_heard_at_the_kiosk(unit)
            assert not unit.hardware.camera.encoded  # VP8 from frames, whichever the camera prefers
            assert unit.controller.view.notice is None and unit.controller.view.camera_on
            assert await clerk.evaluate("() => document.querySelector('[data-testid=kiosk-note]').hidden")

            await clerk.click("[data-testid=hangup-button]")
            await view_until(unit, lambda v: v.screen.value in ("ended", "idle"))
            assert await clerk.errors() == []
            seen = await recorded_browser(central)
            assert (seen.browser.split()[0], seen.h264, seen.video) == ("Firefox", False, "vp8")
    finally:
        await unit.close()


async def test_a_browser_that_takes_no_video_of_the_kiosk_still_talks_with_the_citizen(central, tmp_path,
                                                                                    browser):
    unit = await appliance(central, tmp_path, {"encoded": True})
    kiosk_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})  # the kiosk's own screen
    try:
        kiosk = await kiosk_ctx.new_page()
        await kiosk.goto(unit.page_url)
        async with firefox(tmp_path / "firefox") as clerk:
            await on_duty(clerk, central)
            await clerk.evaluate(WITHOUT_VP8_JS)
            await citizen_waits(unit)
            await pick_up(clerk)

            # The kiosk connects with sound only and says so; so does the console.
            view = await view_until(unit, lambda v: v.notice == "video_rejected", seconds=40)
            assert view.screen.value == "in_call" and not view.camera_on
            await kiosk.locator("#call-notice").wait_for()
            # in the kiosk's default language, German
            assert "Sie können sich aber weiter hören" in await kiosk.locator("#call-notice").text_content()
            await clerk.wait_for_selector("[data-testid=kiosk-note]")
            note = await clerk.evaluate("() => document.querySelector('[data-testid=kiosk-note]').textContent")
            assert "can only hear each other" in note
            await sound_arrives(clerk)
            await clerk_heard_at_the_kiosk(unit)
            assert unit.hardware.camera._track is None  # the camera is off: nobody could see it
            assert await clerk.errors() == []
            seen = await recorded_browser(central)
            assert (seen.h264, seen.video) == (False, "none")
    finally:
        await kiosk_ctx.close()
        await unit.close()


async def test_a_chromium_clerk_still_gets_the_cameras_h264_passed_through(central, tmp_path, browser):
    unit = await appliance(central, tmp_path, {"encoded": True})
    context = await browser.new_context(permissions=["camera", "microphone", "notifications"])
    try:
        clerk = await context.new_page()
        await on_duty(clerk, central)
        await citizen_waits(unit)
        await pick_up(clerk)
        await moving_video(clerk)
        stats = await clerk.evaluate(INBOUND_STATS_JS)
        assert stats["video"]["width"] == 640  # the camera's own size: nothing was scaled or re-encoded
        await sound_arrives(clerk)
        assert unit.hardware.camera.encoded  # the packets pass through
        seen = await recorded_browser(central)
        assert (seen.browser.split()[0], seen.h264, seen.video) == ("Chrome", True, "h264")
    finally:
        await context.close()
        await unit.close()
