"""The whole appliance process with fake hardware against a real central: the call button drives a visit."""
from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.service.main import start
from tests.central.conftest import central  # noqa: F401  (shared fixture)


@pytest.fixture
async def appliance(central):  # noqa: F811
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    unit = await start(config)
    yield unit
    await unit.close()


async def until(unit, predicate, seconds=10.0):
    async with asyncio.timeout(seconds):
        while not predicate(unit.controller.view):
            await asyncio.sleep(0.05)
    return unit.controller.view


async def test_button_presses_take_a_citizen_into_the_waiting_room(central, appliance):
    clerk = await central.clerk()
    button = appliance.hardware.button
    view = await until(appliance, lambda v: v.online)
    assert view.location == "Rathaus Musterdorf, Foyer"
    assert button.mode == "idle"

    await button.press()
    view = await until(appliance, lambda v: v.screen is Screen.CHOOSING)
    await button.press()  # next open department
    view = await until(appliance, lambda v: v.selected == "standesamt")
    await button.long_press()  # choose it
    await until(appliance, lambda v: v.screen is Screen.CONSENT)
    await button.press()  # consent
    view = await until(appliance, lambda v: v.position == 1)
    assert view.screen is Screen.WAITING
    assert button.mode == "waiting" and 0 < button.led_value < 1  # steady, dimmed

    joined = await clerk.recv("queue.joined")
    assert joined["visit"]["department"] == "standesamt"

    # The page shows the same view the controller has.
    with urllib.request.urlopen(appliance.page_url.rstrip("/") + "/", timeout=5) as r:
        assert r.status == 200
    assert appliance.bridge.current_view()["screen"] == "waiting"

    await button.long_press()  # cancel
    view = await until(appliance, lambda v: v.screen is Screen.IDLE)
    left = await clerk.recv("queue.left")
    assert left["reason"] == "cancelled"
    assert not appliance.controller.has_visit_data
