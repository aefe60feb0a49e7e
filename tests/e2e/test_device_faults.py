"""A kiosk device that fails in a call, with central, real aiortc on the kiosk and Chromium for the clerk
and the kiosk page: what the citizen, the clerk and central see.

- camera fails at call start or mid-call: the call goes on audio-only, the kiosk page says so, central
  counts the fault and tells the clerk (call.notice), whose console shows it;
- microphone fails mid-call: the kiosk ends the call (visit.hangup device_failed); both sides say why,
  and the kiosk goes back to idle, never to the waiting screen.
"""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.controller.view import Screen
from appliance.fleet.devices import DeviceBook
from appliance.service.main import start
from tests.e2e.clerk_steps import on_duty
from tests.e2e.test_clerk_call import INBOUND_STATS_JS, poll
from tests.e2e.test_kiosk_call import KIOSK_PICTURE_JS
from tests.polling import view_until

CAMERA_NOTE = {"Die Kamera des Kiosks funktioniert nicht mehr. Sie hören sich weiter; die Bürgerin oder der Bürger "
               "ist nicht zu sehen.",
               "The kiosk's camera stopped working. You can still hear each other; the citizen cannot be seen."}
KIOSK_CAMERA_NOTE = "Ihre Kamera funktioniert nicht mehr. Die Sachbearbeitung kann Sie weiter hören."
MICROPHONE_END = {"Das Mikrofon des Kiosks funktioniert nicht mehr, deshalb wurde das Gespräch beendet.",
                  "The kiosk's microphone stopped working, so the call was ended."}
KIOSK_MICROPHONE_END = ("Das Mikrofon hat aufgehört zu funktionieren, deshalb wurde das Gespräch beendet. "
                        "Bitte sagen Sie dem Personal in diesem Haus Bescheid.")


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    appliance = await start(config, timeouts=Timeouts(ended_s=1.0), devices=DeviceBook())
    yield appliance
    await appliance.close()


@pytest.fixture
async def sides(browser, central, unit):
    clerk_ctx = await browser.new_context(permissions=["camera", "microphone", "notifications"])
    kiosk_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    clerk, kiosk = await clerk_ctx.new_page(), await kiosk_ctx.new_page()
    await on_duty(clerk, central)
    await kiosk.goto(unit.page_url)
    await view_until(unit, lambda v: v.online)
    yield clerk, kiosk
    await clerk_ctx.close()
    await kiosk_ctx.close()


async def into_call(unit, clerk, kiosk, *, shown=True) -> None:
    button = unit.hardware.button
    await button.press()
    await kiosk.locator("#kiosk[data-screen=choosing]").wait_for()
    await button.long_press()
    await kiosk.locator("#kiosk[data-screen=consent]").wait_for()
    await button.press()
    await view_until(unit, lambda v: v.position is not None)
    await clerk.locator("[data-testid=visit-row] [data-testid=pickup-button]").click()
    if shown:
        await kiosk.locator("#kiosk[data-screen=in_call]").wait_for()


def kiosk_faults(central) -> dict:
    [state] = [s for s in central.hub.fleet.kiosks.values() if s.device_faults] or [None]
    return state.device_faults if state else {}


async def audio_energy(clerk) -> float:
    stats = await clerk.evaluate(INBOUND_STATS_JS)
    return (stats and stats["audio"] and stats["audio"]["energy"]) or 0.0


async def assert_audio_only_with_notes(central, unit, clerk, kiosk) -> None:
    view = await view_until(unit, lambda v: v.notice == "camera_failed")
    assert view.screen is Screen.IN_CALL and not view.camera_on and view.microphone_on
    # The citizen reads why their picture is gone; the clerk reads that the citizen cannot be seen.
    await kiosk.locator("#call-notice").wait_for()
    assert await kiosk.locator("#call-notice").text_content() == KIOSK_CAMERA_NOTE
    note = clerk.locator("[data-testid=kiosk-note]")
    await note.wait_for()
    assert await note.text_content() in CAMERA_NOTE
    # Central counted it for the fleet page, the unit's device book has the camera failed (health reports it).
    await poll(lambda: asyncio.sleep(0, kiosk_faults(central)), lambda f: f.get(("camera", "camera_failed")) == 1)
    assert unit.devices.snapshot()["camera"].state == "failed"
    # The call goes on: the citizen's voice keeps arriving at the clerk, the clerk's picture at the kiosk.
    before = await audio_energy(clerk)
    await poll(lambda: audio_energy(clerk), lambda e: e > before + 0.01, seconds=10)
    pictures = []

    async def clerk_picture_moves():
        pictures.append(await kiosk.evaluate(KIOSK_PICTURE_JS))
        return len({p["hash"] for p in pictures if p and p["lit"] > 0}) >= 3
    await poll(clerk_picture_moves, lambda ok: ok, seconds=20)
    assert unit.controller.view.screen is Screen.IN_CALL


async def test_camera_failing_at_call_start_leaves_an_audio_only_call(central, unit, sides):
    clerk, kiosk = sides
    unit.hardware.camera.fail()  # the camera will not start
    await into_call(unit, clerk, kiosk)
    await assert_audio_only_with_notes(central, unit, clerk, kiosk)
    stats = await clerk.evaluate(INBOUND_STATS_JS)
    assert not (stats["video"] and stats["video"]["framesDecoded"])  # nothing was ever sent as video


async def test_camera_failing_mid_call_leaves_an_audio_only_call(central, unit, sides):
    clerk, kiosk = sides
    await into_call(unit, clerk, kiosk)
    await poll(lambda: clerk.evaluate(INBOUND_STATS_JS), lambda s: s and s["video"] and s["video"]["framesDecoded"] > 20)
    assert unit.controller.view.notice is None
    unit.hardware.camera.fail(after_frames=5)  # a few more pictures, then the camera stops by itself
    await assert_audio_only_with_notes(central, unit, clerk, kiosk)


@pytest.mark.parametrize("when", ["mid_call", "at_call_start"])
async def test_microphone_failing_ends_the_call_on_both_sides(central, unit, sides, when):
    clerk, kiosk = sides
    screens = []
    publish = unit.controller._publish
    unit.controller._publish = lambda view: (screens.append(view.screen), publish(view))
    if when == "mid_call":
        await into_call(unit, clerk, kiosk)
        await poll(lambda: audio_energy(clerk), lambda e: e > 0)
        unit.hardware.microphone.fail(after_frames=10)
    else:
        unit.hardware.microphone.fail()  # it will not start when the clerk picks up
        await into_call(unit, clerk, kiosk, shown=False)  # the call screen may last too short to be drawn
    # The citizen reads why the call ended, then the kiosk is idle for the next citizen (never waiting).
    await kiosk.locator("#kiosk[data-screen=ended]").wait_for()
    assert await kiosk.locator("#ended-reason").text_content() == KIOSK_MICROPHONE_END
    assert unit.controller.view.ended_reason == "device_failed"
    # The clerk's console closed the call and says why.
    await clerk.locator("[data-testid=call-view]").wait_for(state="hidden")
    said = await clerk.locator("#call-notice").text_content()
    assert any(text in said for text in MICROPHONE_END), said
    await kiosk.locator("#kiosk[data-screen=idle]").wait_for(timeout=10_000)
    assert Screen.ENDED in screens and Screen.WAITING not in screens[screens.index(Screen.IN_CALL):]
    # Central ended the visit, counted the fault; the unit's device book has the microphone failed.
    await poll(lambda: asyncio.sleep(0, len(central.hub.rooms)), lambda n: n == 0)
    await poll(lambda: asyncio.sleep(0, kiosk_faults(central)), lambda f: f.get(("microphone", "microphone_failed")) == 1)
    assert unit.devices.snapshot()["microphone"].state == "failed"
    assert not unit.controller.has_visit_data


async def test_live_use_marks_devices_working_and_a_failed_speaker_is_recorded(central, unit, sides):
    clerk, kiosk = sides
    await into_call(unit, clerk, kiosk)  # pressed the button, camera and microphone in the call
    await poll(lambda: asyncio.sleep(0, unit.devices.snapshot()),
               lambda d: all(d[x].state == "ok" and d[x].source == "live"
                             for x in ("camera", "microphone", "speaker", "button")))
    unit.hardware.speaker.fail()  # the clerk's voice no longer comes out
    await poll(lambda: asyncio.sleep(0, unit.devices.snapshot()["speaker"]),
               lambda h: h.state == "failed" and h.fault == "speaker_failed")
    # The call goes on: the citizen is still heard by the clerk.
    before = await audio_energy(clerk)
    await poll(lambda: audio_energy(clerk), lambda e: e > before + 0.01, seconds=10)
    assert unit.controller.view.screen is Screen.IN_CALL
