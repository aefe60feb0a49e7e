"""A USB speakerphone or microphone pulled out and plugged in again, with central, real aiortc on the kiosk
and Chromium for the clerk and the kiosk page (the fake devices' unplug()/plug(), watched every 2 s by
appliance/fleet/watch.py; health reports keep their normal spacing of 5 s, which central's rate limit expects):

- pulled out in a call: the call ends, both sides say why; the kiosk page then shows its fault screen
  naming the microphone, and the health report at central has it missing;
- pulled out while idle: the fault screen at once, no visit can start;
- plugged in again: the fault clears (kiosk page, health report) and the next visit works.
"""
from __future__ import annotations

import asyncio

from appliance.controller.view import Screen
from tests.browser import poll
from tests.e2e.test_device_faults import (  # noqa: F401 - unit and sides are fixtures
    KIOSK_MICROPHONE_END,
    MICROPHONE_END,
    audio_energy,
    into_call,
    sides,
    unit,
)
from tests.polling import view_until

MICROPHONE_GONE = "Das Mikrofon funktioniert nicht."


async def health_at_central(central, predicate, seconds=20.0):
    async def report():
        reports = [k.health for k in central.hub.fleet.kiosks.values() if k.online and k.health is not None]
        return reports[0] if reports else None
    return await poll(report, lambda h: h is not None and predicate(h), seconds=seconds)


async def assert_fault_screen_and_report(central, kiosk) -> None:
    await kiosk.locator("#kiosk[data-screen=fault]").wait_for(timeout=15_000)
    assert await kiosk.locator("#fault-detail").text_content() == MICROPHONE_GONE
    report = await health_at_central(central, lambda h: h.devices["microphone"].state == "missing")
    assert report.devices["microphone"].fault == "microphone_missing"
    assert any(f.code == "microphone_missing" and f.device == "microphone" for f in report.faults)


async def assert_back_and_a_visit_works(central, unit, clerk, kiosk) -> None:  # noqa: F811
    await kiosk.locator("#kiosk[data-screen=idle]").wait_for(timeout=15_000)
    report = await health_at_central(central, lambda h: h.devices["microphone"].state == "ok")
    assert report.devices["microphone"].name == "synthetic tone"
    played = unit.hardware.speaker.frames_played
    await into_call(unit, clerk, kiosk)
    # The citizen is heard again, and the clerk's voice comes out of the speaker.
    before = await audio_energy(clerk)
    await poll(lambda: audio_energy(clerk), lambda e: e > before + 0.01, seconds=15)
    await poll(lambda: asyncio.sleep(0, unit.hardware.speaker.frames_played), lambda n: n > played + 48000)
    assert unit.controller.view.screen is Screen.IN_CALL


async def test_a_speakerphone_pulled_out_in_a_call_ends_it_and_works_again_once_plugged_in(
        central, unit, sides):  # noqa: F811
    clerk, kiosk = sides
    await into_call(unit, clerk, kiosk)
    await poll(lambda: audio_energy(clerk), lambda e: e > 0)
    unit.hardware.microphone.unplug()  # one USB device for both
    unit.hardware.speaker.unplug()
    # Both sides read why the call ended.
    await kiosk.locator("#kiosk[data-screen=ended]").wait_for()
    assert await kiosk.locator("#ended-reason").text_content() == KIOSK_MICROPHONE_END
    await clerk.locator("[data-testid=call-view]").wait_for(state="hidden")
    said = await clerk.locator("#call-notice").text_content()
    assert any(text in said for text in MICROPHONE_END), said
    # Then the kiosk is out of order, and says which device; central has the report.
    await assert_fault_screen_and_report(central, kiosk)
    report = await health_at_central(central, lambda h: h.devices["speaker"].state == "missing")
    assert report.devices["speaker"].fault == "speaker_missing"
    unit.hardware.microphone.plug()
    unit.hardware.speaker.plug()
    await assert_back_and_a_visit_works(central, unit, clerk, kiosk)


async def test_a_microphone_pulled_out_while_idle_stops_visits_until_plugged_in(central, unit, sides):  # noqa: F811
    clerk, kiosk = sides
    unit.hardware.microphone.unplug()  # a USB microphone; the speaker stays (the Pi's own audio out)
    await assert_fault_screen_and_report(central, kiosk)
    assert unit.devices.snapshot()["speaker"].state != "missing"
    await unit.hardware.button.press()
    await view_until(unit, lambda v: v.screen is Screen.FAULT)
    assert len(central.hub.rooms) == 0  # nobody was queued
    unit.hardware.microphone.plug()
    await assert_back_and_a_visit_works(central, unit, clerk, kiosk)


KIOSK_SPEAKER_NOTE = ("Der Lautsprecher funktioniert nicht mehr, deshalb hören Sie die Sachbearbeitung nicht. "
                      "Die Sachbearbeitung kann Sie weiter sehen und hören.")
SPEAKER_NOTE = {"Der Lautsprecher des Kiosks funktioniert nicht mehr. Die Bürgerin oder der Bürger hört Sie nicht; "
                "Sie sehen und hören sie oder ihn weiter.",
                "The kiosk's loudspeaker stopped working. The citizen cannot hear you; you can still see and hear them."}


async def test_a_usb_speaker_pulled_out_in_a_call_leaves_the_call_on_and_tells_both_sides(
        central, unit, sides):  # noqa: F811
    clerk, kiosk = sides
    await into_call(unit, clerk, kiosk)
    speaker = unit.hardware.speaker
    await poll(lambda: asyncio.sleep(0, speaker.frames_played), lambda n: n > 0)
    speaker.unplug()  # a USB speaker beside a USB microphone
    # The citizen reads why the clerk is silent, the clerk why the citizen does not answer.
    await kiosk.locator("#call-notice").wait_for()
    assert await kiosk.locator("#call-notice").text_content() == KIOSK_SPEAKER_NOTE
    note = clerk.locator("[data-testid=kiosk-note]")
    await note.wait_for()
    assert await note.text_content() in SPEAKER_NOTE
    # The call goes on: the citizen is still heard.
    before = await audio_energy(clerk)
    await poll(lambda: audio_energy(clerk), lambda e: e > before + 0.01, seconds=10)
    assert unit.controller.view.screen is Screen.IN_CALL
    # Plugged in again during the call: the clerk's voice comes out again and the citizen's note goes.
    played = speaker.frames_played
    speaker.plug()
    await poll(lambda: asyncio.sleep(0, speaker.frames_played), lambda n: n > played + 48000)
    await kiosk.locator("#call-notice").wait_for(state="hidden")
    assert unit.controller.view.screen is Screen.IN_CALL
