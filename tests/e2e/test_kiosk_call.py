"""The whole unit end to end: central, the appliance with fake hardware, and two real Chromiums —
one as the clerk's console, one showing the kiosk page as the town-hall screen does.

Button (mock pin) -> visit in the console -> pick up -> each side sees the other
move and hears the other -> the clerk hangs up -> the kiosk is idle again, and
neither central nor the appliance holds anything of that visit.
"""
from __future__ import annotations

import asyncio
import base64
import os

import numpy as np
import pytest

from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.hardware.fake.camera import read_clock
from appliance.service.main import start
from tests.browser import GREEN_JS
from tests.central.test_waiting_rooms import _dump_database
from tests.e2e.clerk_steps import on_duty
from tests.e2e.test_clerk_call import INBOUND_STATS_JS, grab_clock, poll
from tests.polling import view_until

# A fingerprint of what the kiosk page shows of the clerk: changes while the picture moves.
KIOSK_PICTURE_JS = """() => {
  const v = document.querySelector('#clerk-video'), c = document.querySelector('#clerk-canvas');
  let src = null, w = 0, h = 0;
  if (v && v.videoWidth > 0) { src = v; w = v.videoWidth; h = v.videoHeight; }
  else if (c && c.width > 0 && c.height > 0) { src = c; w = c.width; h = c.height; }
  if (!src) return null;
  const k = document.createElement('canvas'); k.width = 64; k.height = 48;
  const g = k.getContext('2d'); g.drawImage(src, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data;
  let sum = 0, lit = 0;
  for (let i = 0; i < d.length; i += 4) { sum = (sum * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0; lit += d[i] + d[i + 1] + d[i + 2]; }
  return {w, h, hash: sum, lit};
}"""

# The kiosk's own picture as the page draws it (scaled down, mirrored only by CSS), scaled back to
# the camera's size so read_clock finds the test pattern's clock; the green channel is the luma.
SELF_VIEW_JS = """([w, h]) => {
""" + GREEN_JS + """
  const c = document.querySelector('#self-view-canvas');
  if (!c || !c.width || !c.height || !window.amtsklingel.selfView.shown) return null;
  return green(c, c.width, c.height, w, h);
}"""


async def self_view_clock(kiosk, camera) -> int | None:
    luma = await kiosk.evaluate(SELF_VIEW_JS, [camera.width, camera.height])
    if luma is None:
        return None
    return read_clock(np.frombuffer(base64.b64decode(luma), np.uint8).reshape(camera.height, camera.width))


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the appliance wrote by accident would land here
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    appliance = await start(config, timeouts=Timeouts(ended_s=1.0))
    yield appliance
    await appliance.close()


async def test_button_to_call_to_hang_up_with_both_browsers(central, browser, unit, tmp_path):
    clerk_ctx = await browser.new_context(permissions=["camera", "microphone", "notifications"])
    kiosk_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    clerk, kiosk = await clerk_ctx.new_page(), await kiosk_ctx.new_page()
    try:
        await on_duty(clerk, central)
        await kiosk.goto(unit.page_url)
        await view_until(unit, lambda v: v.online)
        await kiosk.locator("#kiosk[data-screen=idle]").wait_for()

        # The citizen: press (choose), long press (take the highlighted Bürgerbüro), press (consent).
        button = unit.hardware.button
        await button.press()  # drives the mock GPIO pin low, then high again
        await kiosk.locator("#kiosk[data-screen=choosing]").wait_for()
        await button.long_press()
        await kiosk.locator("#kiosk[data-screen=consent]").wait_for()
        await button.press()
        await kiosk.locator("#kiosk[data-screen=waiting]").wait_for()
        waiting = await view_until(unit, lambda v: v.position is not None)
        assert waiting.position == 1 and button.mode == "waiting"

        # The clerk is alerted and picks up.
        row = clerk.locator("[data-testid=visit-row]")
        await row.wait_for()
        alerts = await clerk.evaluate("window.amtsklingel.alerts")
        assert len(alerts) == 1
        visit_id = alerts[0]["visit_id"]
        await row.locator("[data-testid=pickup-button]").click()
        await kiosk.locator("#kiosk[data-screen=in_call]").wait_for()
        assert button.mode == "in_call"

        # Clerk side: the kiosk's test pattern arrives and its clock moves on.
        await poll(lambda: clerk.evaluate(INBOUND_STATS_JS),
                   lambda s: s and s["video"] and s["video"]["framesDecoded"] > 30)
        first = await poll(lambda: grab_clock(clerk), lambda c: c is not None)
        await asyncio.sleep(1.0)
        await poll(lambda: grab_clock(clerk), lambda c: c is not None and 500 <= (c - first) % 2**32 <= 10_000)
        await poll(lambda: clerk.evaluate(INBOUND_STATS_JS),
                   lambda s: s and s["audio"] and (s["audio"]["energy"] or 0) > 0)

        # Kiosk side: the clerk's (fake-device) camera moves on the kiosk page ...
        pictures = []
        async def moving():
            pictures.append(await kiosk.evaluate(KIOSK_PICTURE_JS))
            shown = [p for p in pictures if p and p["lit"] > 0]
            return len({p["hash"] for p in shown}) >= 3
        await poll(moving, lambda ok: ok, seconds=20)
        # ... the kiosk's own test pattern moves in the small self-view ...
        first = await poll(lambda: self_view_clock(kiosk, unit.hardware.camera), lambda c: c is not None)
        await asyncio.sleep(1.0)
        await poll(lambda: self_view_clock(kiosk, unit.hardware.camera),
                   lambda c: c is not None and 500 <= (c - first) % 2**32 <= 10_000)
        assert await kiosk.evaluate("getComputedStyle(document.querySelector('#self-view-canvas')).transform") \
            == "matrix(-1, 0, 0, 1, 0, 0)"  # mirrored
        # ... and the clerk's (fake-device) microphone comes out of the kiosk's speaker.
        speaker = unit.hardware.speaker
        await poll(lambda: asyncio.sleep(0, speaker.played()),
                   lambda pcm: pcm.size > 48_000 // 2 and np.abs(pcm.astype(np.int32)).max() > 1000)

        # The clerk hangs up; the kiosk says goodbye and returns to idle.
        await clerk.click("[data-testid=hangup-button]")
        await kiosk.locator("#kiosk[data-screen=ended]").wait_for()
        await kiosk.locator("#kiosk[data-screen=idle]").wait_for(timeout=10_000)
        assert button.mode == "idle"
        assert unit.hardware.camera._track is None or unit.hardware.camera._track.readyState == "ended"
        assert unit.self_view._track is None  # nothing keeps the camera after the call
    finally:
        await clerk_ctx.close()
        await kiosk_ctx.close()

    # Nothing of the visit is left: not in central, not in the appliance, not on disk.
    await asyncio.sleep(0.3)
    assert len(central.hub.rooms) == 0
    assert not unit.controller.has_visit_data
    view = unit.bridge.current_view()
    assert (view["position"], view["message"], view["selected"]) == (None, None, None)
    assert set(os.listdir(tmp_path)) <= {"central.db", "central.db-wal", "central.db-shm"}  # central's own
    dump = "\n".join(await _dump_database(central))
    assert visit_id not in dump
