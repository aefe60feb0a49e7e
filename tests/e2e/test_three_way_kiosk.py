"""The three-way call of issue 12 end to end, every side real: central, the kiosk appliance (fake hardware,
the Pi 4's H.264 passthrough) with its kiosk page in Chromium, the clerk's console and the interpreter's guest
page in Chromium. Each of the three receives moving pictures and sound from both others; the clerk removes the
interpreter and the call between citizen and clerk goes on."""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import ApplianceConfig
from appliance.service.main import start
from tests.e2e.clerk_steps import on_duty
from tests.e2e.test_clerk_call import poll
from tests.e2e.test_guest_call import CITIZEN_STATS_JS, PAIR_STATS_JS, _moving
from tests.e2e.test_kiosk_call import KIOSK_PICTURE_JS
from tests.polling import view_until

# What the kiosk page has shown of a guest's tile: frames decoded by the page (appliance/kiosk/static/participants.js).
GUEST_TILE_JS = "(peer) => { const s = window.amtsklingel.participants[peer]; return s ? s.shown : null; }"


@pytest.fixture
async def unit(central, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the appliance wrote by accident would land here
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"], kiosk_port=0,
                             hardware={"backend": "fake", "camera": {"encoded": True}})
    appliance = await start(config)
    yield appliance
    await appliance.close()


async def test_kiosk_clerk_and_interpreter_in_browsers_each_see_and_hear_both_others(central, browser, unit):
    central.hub.call_connect_timeout_s = 60
    contexts = [await browser.new_context(permissions=["camera", "microphone"]) for _ in range(2)]
    kiosk_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    (clerk, guest), kiosk = [await context.new_page() for context in contexts], await kiosk_ctx.new_page()
    try:
        await on_duty(clerk, central)
        await kiosk.goto(unit.page_url)
        await view_until(unit, lambda v: v.online)
        unit.controller.post("choose", "buergerbuero")
        await kiosk.locator("#kiosk[data-screen=consent]").wait_for()
        unit.controller.post("confirm")
        row = clerk.locator("[data-testid=visit-row]")
        await row.wait_for()
        await row.locator("[data-testid=pickup-button]").click()
        await kiosk.locator("#kiosk[data-screen=in_call]").wait_for()

        # The clerk invites an interpreter; the interpreter opens the link, checks their devices, is let in.
        await clerk.fill("[data-testid=guest-label]", "Dolmetscherin Arabisch")
        await clerk.click("[data-testid=guest-invite]")
        link = await clerk.locator("[data-testid=guest-link]").input_value()
        await guest.goto(link)
        await guest.click("[data-testid=guest-start]")
        await guest.locator("[data-testid=guest-ready]:enabled").click()
        await guest.locator("[data-testid=guest-waiting]").wait_for()
        guest_row = clerk.locator("[data-testid=guest-row]")
        await guest_row.locator("[data-testid=guest-admit]").click()
        await guest.locator("[data-testid=guest-call]").wait_for()
        g = await guest_row.get_attribute("data-peer")

        # The interpreter's page: the citizen (the appliance's H.264) and the clerk, moving, with sound.
        await _moving(guest, "guest", "citizen")
        await _moving(guest, "guest", "clerk")
        # The console: the citizen and the interpreter.
        await _moving(clerk, "console", g)
        before = await clerk.evaluate(CITIZEN_STATS_JS)
        await poll(lambda: clerk.evaluate(CITIZEN_STATS_JS), lambda frames: frames > before + 10, seconds=45)
        # The kiosk page: the interpreter's tile with their moving picture, beside the clerk's; the kiosk's
        # speaker plays the interpreter's voice mixed with the clerk's.
        tile = kiosk.locator(f"#participants .guest-tile[data-peer='{g}']")
        await tile.wait_for()
        assert "Dolmetscherin Arabisch" in await tile.inner_text()
        first = await poll(lambda: kiosk.evaluate(GUEST_TILE_JS, g), lambda shown: shown and shown > 5, seconds=30)
        await poll(lambda: kiosk.evaluate(GUEST_TILE_JS, g), lambda shown: shown > first + 10, seconds=45)
        pictures = []

        async def clerk_moves() -> bool:
            pictures.append(await kiosk.evaluate(KIOSK_PICTURE_JS))
            return len({p["hash"] for p in pictures if p and p["lit"] > 0}) >= 3
        try:
            await poll(clerk_moves, lambda ok: ok, seconds=45)
        except AssertionError:  # say where the clerk's picture stopped: in the appliance, or on the page
            raise AssertionError(f"the clerk's picture does not move on the kiosk page; the appliance's feed: "
                                 f"{unit.clerk_video.stats} ({unit.clerk_video.mode}), the page: {pictures[-3:]}") from None
        mix = unit.controller._call.mix
        mixed = await poll(lambda: asyncio.sleep(0, mix.mixed_frames), lambda n: n > 10, seconds=30)
        await poll(lambda: asyncio.sleep(0, mix.mixed_frames), lambda n: n > mixed + 10, seconds=45)

        # The clerk removes the interpreter: the tile goes, citizen and clerk go on.
        await guest_row.locator("[data-testid=guest-remove]").click()
        await guest.locator("[data-testid=guest-ended]").wait_for()
        await tile.wait_for(state="detached")
        before = await clerk.evaluate(CITIZEN_STATS_JS)
        await poll(lambda: clerk.evaluate(CITIZEN_STATS_JS), lambda frames: frames > before + 30, seconds=45)
        pictures.clear()
        await poll(clerk_moves, lambda ok: ok, seconds=45)
        assert await kiosk.locator("#kiosk").get_attribute("data-screen") == "in_call"
        assert (await clerk.evaluate(PAIR_STATS_JS, ["console", g])) is None  # the pair is gone there too
    finally:
        for context in (*contexts, kiosk_ctx):
            await context.close()
