"""Input on the kiosk page in Debian's real headless Chromium: Space and Enter act as the call button (short
and long presses), so does the on-screen button, and the touch controls send their actions."""
from __future__ import annotations

import asyncio

import pytest

from appliance.controller.view import Screen
from tests.appliance import kiosk_page
from tests.appliance.kiosk_page import actions_are, show, tr, view

bridge, served, page = kiosk_page.bridge, kiosk_page.served, kiosk_page.page  # the page's fixtures, here too


@pytest.mark.browser
async def test_space_and_enter_are_the_call_button(page, bridge):
    await page.keyboard.press("Space")
    await actions_are(bridge, ("press", None))
    await page.keyboard.press("Enter")
    await actions_are(bridge, ("press", None), ("press", None))
    bridge.actions.clear()

    await page.keyboard.down("Space")
    await asyncio.sleep(1.2)
    await actions_are(bridge, ("long_press", None))  # fires while still held, like the button
    await page.keyboard.up("Space")
    await asyncio.sleep(0.3)
    assert bridge.actions == [("long_press", None)]  # letting go adds no short press

    await page.keyboard.down("Enter")
    await asyncio.sleep(0.6)
    await page.keyboard.up("Enter")
    await actions_are(bridge, ("long_press", None), ("press", None))  # shorter than a second: a short press

    # The on-screen button behaves like the physical one, for touch without a keyboard.
    await page.hover("#start-button")
    await page.mouse.down()
    await asyncio.sleep(1.2)
    await page.mouse.up()
    await actions_are(bridge, ("long_press", None), ("press", None), ("long_press", None))


@pytest.mark.browser
async def test_touch_controls_send_actions(page, bridge):
    await page.get_by_role("button", name=tr("de", "Start")).click()
    await page.get_by_role("button", name="Türkçe").click()
    await actions_are(bridge, ("press", None), ("language", "tr"))
    await show(page, bridge, view("tr", screen=Screen.CONSENT, selected="bauamt"))
    await page.get_by_role("button", name=tr("tr", "Start video call")).click()
    await show(page, bridge, view("tr", screen=Screen.IN_CALL, camera_on=True, microphone_on=True))
    assert await page.evaluate("""() => { const v = document.getElementById('clerk-video');
        return v.autoplay && v.hasAttribute('playsinline') && !!document.getElementById('clerk-canvas')
            && !!document.getElementById('self-view'); }""")
    await page.get_by_role("button", name=tr("tr", "End call")).click()
    await actions_are(bridge, ("press", None), ("language", "tr"), ("confirm", None), ("hangup", None))
