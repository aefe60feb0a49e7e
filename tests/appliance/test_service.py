"""The whole appliance process with fake hardware against a real central: the call button drives a visit."""
from __future__ import annotations

import aiohttp
import pytest

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.service.main import start
from tests.polling import until, view_until


@pytest.fixture
async def appliance(central):
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    unit = await start(config)
    yield unit
    await unit.close()


async def test_button_presses_take_a_citizen_into_the_waiting_room(central, appliance):
    clerk = await central.clerk()
    button = appliance.hardware.button
    view = await view_until(appliance, lambda v: v.online)
    assert view.location == "Rathaus Musterdorf, Foyer"
    assert button.mode == "idle"

    await button.press()
    view = await view_until(appliance, lambda v: v.screen is Screen.CHOOSING)
    await button.press()  # next open department
    view = await view_until(appliance, lambda v: v.selected == "standesamt")
    await button.long_press()  # choose it
    await view_until(appliance, lambda v: v.screen is Screen.CONSENT)
    await button.press()  # consent
    view = await view_until(appliance, lambda v: v.position == 1)
    assert view.screen is Screen.WAITING
    assert button.mode == "waiting" and 0 < button.led_value < 1  # steady, dimmed

    joined = await clerk.recv("queue.joined")
    assert joined["visit"]["department"] == "standesamt"

    # The page shows the same view the controller has.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(appliance.page_url.rstrip("/") + "/") as r:
            assert r.status == 200
    assert appliance.bridge.current_view()["screen"] == "waiting"

    await button.long_press()  # cancel
    view = await view_until(appliance, lambda v: v.screen is Screen.IDLE)
    left = await clerk.recv("queue.left")
    assert left["reason"] == "cancelled"
    assert not appliance.controller.has_visit_data


async def test_a_dropped_connection_resumes_the_same_visit_with_its_place(central, appliance):
    clerk = await central.clerk()
    other = await central.new_kiosk("Bibliothek")
    await other.send(type="visit.request", department="buergerbuero")
    await other.recv("visit.queued")  # someone arrived earlier: our unit will be number 2

    await view_until(appliance, lambda v: v.online)
    appliance.controller.post("choose", "buergerbuero")  # a touch on the idle screen
    await view_until(appliance, lambda v: v.screen is Screen.CONSENT)
    appliance.controller.post("confirm")
    await view_until(appliance, lambda v: v.position == 2)
    visit_id = _unit_visit(central)

    # Central drops the unit's connection (as a network outage would).
    page_views = appliance.bridge.subscribe()  # what the kiosk page is shown meanwhile
    kiosk_id = appliance_kiosk_id(central)
    old = central.hub.kiosks[kiosk_id]
    old.link.close()
    await until(lambda: central.hub.kiosks.get(kiosk_id) not in (None, old), 15, what="the unit's new connection")
    await view_until(appliance, lambda v: v.online and v.position == 2)
    shown = []
    while not page_views.empty():
        shown.append(page_views.get_nowait())
    offline = [v for v in shown if not v["online"]]
    assert offline and all(v["screen"] == "waiting" for v in offline)  # calm notice, place kept
    assert _unit_visit(central) == visit_id  # the same visit, not a new one
    assert central.hub.rooms.position(central.hub.rooms.get(visit_id)) == 2
    assert not [m for m in await clerk.quiet(0.3) if m["type"] == "queue.left"]  # the console saw no churn


def appliance_kiosk_id(central) -> int:
    return next(v.kiosk_id for v in central.hub.rooms.all() if v.kiosk_location == "Rathaus Musterdorf, Foyer")


def _unit_visit(central) -> str | None:
    return next((v.id for v in central.hub.rooms.all() if v.kiosk_location == "Rathaus Musterdorf, Foyer"), None)
