"""axe-core finds no WCAG 2.2 A/AA violation on the guest's page once the clerk has let the guest in: the call
with a tile for each participant, their captions and the buttons, and the page after the clerk removed the guest,
in every citizen language, on a phone held upright and on a laptop. (The steps before it, the notice, the device check and the wait, are checked in
test_guest_page.py.)"""
from __future__ import annotations

import pytest

from protocol.languages import CITIZEN_LANGUAGES
from tests.accessibility import LAPTOP, PHONE_PORTRAIT, assert_accessible
from tests.browser import WEBRTC_FLAGS, launch
from tests.central.guest_calls import call_in_progress, invite


@pytest.mark.browser
@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_the_call_on_the_guest_page_is_accessible(central, lang):
    call = await call_in_progress(central)
    status = await invite(call, label="Frau Yılmaz")
    async with launch(WEBRTC_FLAGS) as browser:
        context = await browser.new_context(viewport=PHONE_PORTRAIT, permissions=["camera", "microphone"])
        page = await context.new_page()
        await page.goto(f"{central.url}/guest?lang={lang}{status['link'][len('/guest'):]}")
        await page.click("[data-testid=guest-start]")
        await page.locator("[data-testid=guest-ready]:enabled").click()
        await page.locator("[data-testid=guest-waiting]").wait_for()
        assert (await call.clerk.recv("guest.status"))["state"] == "joining"
        assert (await call.clerk.recv("guest.status"))["state"] == "waiting"
        await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=status["peer"])
        await page.locator("[data-testid=guest-call]").wait_for()
        # The clerk's and the citizen's tiles (central names them as they join the guest's call), and the own one.
        await page.locator("[data-testid=guest-tile]").nth(1).wait_for()
        assert await page.locator("[data-testid=guest-call] figure").count() == 3
        for viewport in (PHONE_PORTRAIT, LAPTOP):
            await page.set_viewport_size(viewport)
            await assert_accessible(page)
        await page.click("[data-testid=guest-mute]")  # the buttons' other words, e.g. "Unmute"
        await page.click("[data-testid=guest-camera]")
        await assert_accessible(page)
        await call.clerk.send(type="guest.remove", visit_id=call.visit_id, peer=status["peer"])
        await page.locator("[data-testid=guest-ended]").wait_for()  # "The clerk has ended your part in the call."
        await assert_accessible(page)
        await context.close()
