"""A clerk in a real Chromium picks up a scripted aiortc kiosk and sees and hears it.

Everything a clerk would check: the alert, the picture moving (the kiosk's
clock, read back from the decoded picture, advances), sound arriving, the
kiosk getting the clerk's picture and voice, and after hang-up no trace left.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt

import numpy as np

from appliance.hardware.fake.camera import read_clock
from appliance.sim.kiosk import SimulatedKiosk
from tests.browser import BASE64_JS, poll
from tests.central.test_waiting_rooms import _dump_database
from tests.e2e.clerk_steps import on_duty, pick_up

GRAB_FRAME_JS = """() => {
""" + BASE64_JS + """
  const v = document.querySelector('#remote-video');
  if (!v || v.videoWidth === 0) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  return {w: c.width, h: c.height, rgba: base64(px)};
}"""

INBOUND_STATS_JS = """async () => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp') out[r.kind] = r; });
  return {video: out.video && {framesDecoded: out.video.framesDecoded, width: out.video.frameWidth},
          audio: out.audio && {samples: out.audio.totalSamplesReceived, energy: out.audio.totalAudioEnergy}};
}"""


async def grab_clock(page) -> int | None:
    frame = await page.evaluate(GRAB_FRAME_JS)
    if frame is None:
        return None
    rgba = np.frombuffer(base64.b64decode(frame["rgba"]), np.uint8).reshape(frame["h"], frame["w"], 4)
    return read_clock(np.ascontiguousarray(rgba[:, :, :3]))


async def test_clerk_picks_up_a_kiosk_and_gets_moving_video_and_audio(central, browser):
    context = await browser.new_context(permissions=["camera", "microphone", "notifications"])
    page = await context.new_page()
    await on_duty(page, central)

    kiosk = SimulatedKiosk(central.url, central.credentials["kiosk_token"])
    await kiosk.start()
    try:
        await kiosk.request("buergerbuero", language="en")
        queued = await kiosk.next_event("visit.queued")

        # The clerk is alerted and sees the visit.
        row = page.locator(f"[data-testid=visit-row][data-visit-id='{queued.visit_id}']")
        await row.wait_for()
        assert "Rathaus Musterdorf" in await row.inner_text()
        alerts = await page.evaluate("window.amtsklingel.alerts")
        assert [a["visit_id"] for a in alerts] == [queued.visit_id]

        central.hub.call_connect_timeout_s = 2.0  # the sim kiosk reports its media, so the call outlasts this
        picked_up = asyncio.get_running_loop().time()
        await pick_up(page, queued.visit_id)

        # Video: frames decode, and the kiosk's clock in the picture moves on.
        stats = await poll(lambda: page.evaluate(INBOUND_STATS_JS),
                           lambda s: s and s["video"] and s["video"]["framesDecoded"] > 30)
        first = await poll(lambda: grab_clock(page), lambda c: c is not None)
        await asyncio.sleep(1.0)
        second = await poll(lambda: grab_clock(page), lambda c: c is not None and c != first)
        assert 500 <= (second - first) % 2**32 <= 10_000, (first, second)
        now_ms = int(dt.datetime.now().timestamp() * 1000) % 2**32
        assert (now_ms - second) % 2**32 < 5_000  # the picture is live, not a replay

        # Audio: samples with energy arrive at the clerk.
        audio = await poll(lambda: page.evaluate(INBOUND_STATS_JS),
                           lambda s: s and s["audio"] and s["audio"]["energy"] and s["audio"]["energy"] > 0)
        assert audio["audio"]["samples"] > 48_000 // 2

        # And the other way: the kiosk receives the clerk's (fake-device) camera and microphone.
        await poll(lambda: asyncio.sleep(0, kiosk.received),
                   lambda r: r.video_frames > 10 and r.audio_frames > 10)
        await asyncio.sleep(max(0.0, picked_up + 3.0 - asyncio.get_running_loop().time()))
        assert kiosk.state == "in_call"  # not given up by central's media timer

        await page.click("[data-testid=hangup-button]")
        ended = await kiosk.next_event("visit.ended")
        assert ended.reason == "hangup_staff"
        await page.locator("[data-testid=call-view]").wait_for(state="hidden")
        assert await page.evaluate("window.amtsklingel.pc") is None
    finally:
        await kiosk.stop()
        await context.close()

    # Nothing of the visit is left on central.
    await asyncio.sleep(0.2)
    assert len(central.hub.rooms) == 0
    dump = "\n".join(await _dump_database(central))
    assert queued.visit_id not in dump and queued.resume_token not in dump
    assert stats["video"]["width"] == 640
