"""axe-core finds no WCAG 2.2 A/AA violation on any screen of a visit from home, in every citizen language,
on a phone held upright and on a laptop: the notice, the device check, the waiting room with a clerk's
message, the call, the end, and the screen for a device without microphone."""
from __future__ import annotations

import pytest

from protocol.languages import CITIZEN_LANGUAGES
from tests.accessibility import LAPTOP, PHONE_PORTRAIT, assert_accessible
from tests.e2e.test_home_devices import NOTHING_JS


async def every_screen(page, central, clerk, lang: str) -> None:
    await page.goto(f"{central.url}/visit/buergerbuero?lang={lang}")
    assert await page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        lang, "rtl" if lang == "ar" else "ltr"]
    await assert_accessible(page)                                            # the notice
    await page.click("[data-testid=notice-ok]")
    await page.locator("[data-testid=start]:enabled").wait_for()
    await assert_accessible(page)                                            # camera and microphone check
    await page.click("[data-testid=start]")
    await page.locator("[data-testid=waiting]").wait_for()
    visit_id = (await clerk.recv("queue.joined"))["visit"]["visit_id"]
    await clerk.send(type="visit.message", visit_id=visit_id, text="Einen Moment bitte.")
    await page.locator("[data-testid=messages] p").wait_for()
    await assert_accessible(page)                                            # waiting room
    await clerk.send(type="visit.pickup", visit_id=visit_id)
    await clerk.recv("rtc.offer")
    await page.locator("[data-testid=call]").wait_for()
    await assert_accessible(page)                                            # the call
    await clerk.send(type="visit.hangup", visit_id=visit_id)
    await page.locator("[data-testid=ended]").wait_for()
    await assert_accessible(page)                                            # the end
    await clerk.recv("presence.changed")


@pytest.mark.parametrize("lang", CITIZEN_LANGUAGES)
async def test_every_screen_of_a_visit_from_home_is_accessible(central, browser, lang):
    clerk = await central.clerk()
    await central.db.home_visits.save("buergerbuero", "+49 30 1234-567", None)
    central.hub.set_departments(await central.db.departments())
    for viewport in (PHONE_PORTRAIT, LAPTOP):
        context = await browser.new_context(permissions=["camera", "microphone"], viewport=viewport)
        await every_screen(await context.new_page(), central, clerk, lang)
        await context.close()
    context = await browser.new_context(viewport=PHONE_PORTRAIT)
    await context.add_init_script(NOTHING_JS)
    page = await context.new_page()
    await page.goto(f"{central.url}/visit/buergerbuero?lang={lang}")
    await page.click("[data-testid=notice-ok]")
    await page.locator("[data-testid=no-devices]").wait_for()
    await assert_accessible(page)                                            # no microphone: the phone number
    await context.close()
