"""A call between the appliance (fake hardware) and a clerk's console (Debian's Chromium) goes on while
a real central process is stopped and started again (media is peer to peer); afterwards the citizen
hangs up: the kiosk ends the call at once and the clerk's console learns of it through the new central."""
from __future__ import annotations

import signal
from types import SimpleNamespace

import aiohttp

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.service.main import start
from central.seed import seed_demo
from central.storage import Database
from tests.browser import poll
from tests.central.central_processes import CentralProcess
from tests.e2e.clerk_steps import CONNECTED, on_duty
from tests.e2e.test_clerk_call import INBOUND_STATS_JS
from tests.polling import until


async def frames(clerk) -> int:
    stats = await clerk.evaluate(INBOUND_STATS_JS)
    return stats["video"]["framesDecoded"] if stats and stats["video"] else 0


async def test_a_call_goes_on_while_central_restarts_and_is_hung_up_afterwards(browser, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    central = CentralProcess(tmp_path)
    db = await Database.open(central.database_url)
    try:
        credentials = await seed_demo(db)
    finally:
        await db.close()
    async with aiohttp.ClientSession() as session:
        await central.start(session)
        unit = await start(ApplianceConfig(central_url=central.url, token=credentials["kiosk_token"],
                                           hardware={"backend": "fake"}, kiosk_port=0))
        context = await browser.new_context(permissions=["camera", "microphone", "notifications"])
        clerk = await context.new_page()
        try:
            await on_duty(clerk, SimpleNamespace(url=central.url, credentials=credentials))
            await until(lambda: unit.controller.view.online, 30)
            unit.controller.post("choose", "buergerbuero")
            unit.controller.post("confirm")
            await clerk.locator("[data-testid=pickup-button]").click()
            await until(lambda: unit.controller.view.screen is Screen.IN_CALL and unit.controller._call_connected, 30)
            await poll(lambda: frames(clerk), lambda n: n > 30)

            for sig in (signal.SIGTERM, signal.SIGKILL):
                await central.stop(sig)
                await until(lambda: not unit.controller.view.online, 30)
                before = await frames(clerk)
                await poll(lambda: frames(clerk), lambda n, before=before: n > before + 30)  # the picture keeps coming
                assert unit.controller.view.screen is Screen.IN_CALL, sig
                await central.start(session)
                await until(lambda: unit.controller.view.online, 30)
                await clerk.locator(CONNECTED).wait_for(timeout=30_000)
                assert unit.controller.view.screen is Screen.IN_CALL and unit.controller._call_connected, sig

            unit.controller.post("hangup")  # the citizen hangs up
            await until(lambda: unit.controller.view.screen is Screen.ENDED, 5)
            await clerk.locator("[data-testid=call-view]").wait_for(state="hidden", timeout=15_000)
            await until(lambda: not unit.controller.has_visit_data, 15)  # central confirmed the end
        finally:
            await context.close()
            await unit.close()
        assert await central.stop(signal.SIGTERM) == 0
