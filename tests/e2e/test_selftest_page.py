"""The self-test as the person installing a unit sees it: the real kiosk page in Chromium, the
appliance with fake hardware, and central receiving the result."""
from __future__ import annotations

import pytest

from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.fleet.devices import DeviceBook
from appliance.service.main import start
from tests.browser import poll
from tests.polling import view_until


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    appliance = await start(config, timeouts=Timeouts(ended_s=1.0), devices=DeviceBook())
    yield appliance
    await appliance.close()


async def test_hold_five_seconds_then_every_item_in_plain_german_and_central_has_the_result(central, browser, unit):
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    kiosk = await context.new_page()
    try:
        await kiosk.goto(unit.page_url)
        await view_until(unit, lambda v: v.online)
        await kiosk.locator("#kiosk[data-screen=idle]").wait_for()
        unit.selftest.probes.clock.fail()  # this unit's clock was never set from the network

        await unit.hardware.button.hold_for_selftest()
        await kiosk.locator("#kiosk[data-screen=selftest]").wait_for()
        # The camera's picture is on the screen while the test runs.
        await poll(lambda: kiosk.evaluate("window.amtsklingel.selfView.shown"), lambda shown: shown > 0)
        await kiosk.locator("#selftest-ask").wait_for()
        assert await kiosk.locator("#selftest-ask").text_content() == "Drücken Sie jetzt den Knopf."
        await unit.hardware.button.press()
        await kiosk.locator("#selftest-done").wait_for()

        items = kiosk.locator(".selftest-item")
        states = {await item.get_attribute("data-item"): await item.get_attribute("data-state")
                  for item in await items.all()}
        assert states == {"camera": "pass", "microphone": "pass", "sound_loop": "pass", "button": "pass",
                          "network": "pass", "central": "pass", "clock": "fail", "enrolment": "pass"}
        clock = kiosk.locator(".selftest-item[data-item=clock]")
        assert await clock.locator(".selftest-state").text_content() == "Funktioniert nicht"
        assert await clock.locator(".selftest-why").text_content() == \
            "Die Uhrzeit ist noch nicht gestellt. Dafür braucht das Gerät das Netzwerk."
        assert await kiosk.locator(".selftest-item[data-item=camera] .selftest-state").text_content() == "Funktioniert"
        # The installer reads which devices were tested (the ones fitted, by name).
        assert await kiosk.locator(".selftest-item[data-item=camera] .selftest-device").text_content() == "test pattern"
        assert await kiosk.locator(".selftest-item[data-item=microphone] .selftest-device").text_content() == \
            "synthetic tone"
        # The meter moved with the fake microphone's tone.
        assert unit.controller.view.selftest["level"] > 0

        # Central has the result for the fleet page; the unit's device book too (the health report).
        state = await poll(lambda: _selftest_state(central), lambda s: s is not None)
        results = {i.item: (i.result, i.fault) for i in state.selftest.items}
        assert state.selftest.started_by == "button" and results["clock"] == ("fail", "clock_unsynchronised")
        assert results["sound_loop"] == ("pass", None)
        assert {d: h.state for d, h in unit.devices.snapshot().items()} == dict.fromkeys(
            ("camera", "microphone", "speaker", "button"), "ok")

        # A press leaves; the camera is off again.
        await unit.hardware.button.press()
        await kiosk.locator("#kiosk[data-screen=idle]").wait_for()
        assert unit.self_view._track is None
    finally:
        await context.close()


async def _selftest_state(central):
    found = [s for s in central.hub.fleet.kiosks.values() if s.selftest is not None]
    return found[0] if found else None
