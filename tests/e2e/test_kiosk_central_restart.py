"""The appliance (fake hardware) waiting in a real central process that is stopped (SIGTERM) and killed
(SIGKILL): the kiosk page tells the citizen calmly that the connection is being restored and their
place is kept, and when central is back the unit has the same visit in the same place."""
from __future__ import annotations

import signal

import aiohttp

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.kiosk.i18n import Catalogues
from appliance.service.main import start
from central.seed import seed_demo
from central.storage import Database
from tests.browser import open_page, poll, require_isolated_network
from tests.central.central_processes import CentralProcess, Kiosk
from tests.polling import until, view_until

RESTORING = "The connection is being restored. Your place is kept."
SHOWN_JS = """() => {
  const offline = document.querySelector('#waiting-offline');
  return {screen: document.querySelector('#kiosk').dataset.screen, position: document.querySelector('#position').textContent,
          restoring: offline.hidden ? null : offline.textContent};
}"""


async def test_a_waiting_kiosk_keeps_its_place_across_a_central_restart(tmp_path, monkeypatch):
    require_isolated_network()
    monkeypatch.chdir(tmp_path)  # anything the appliance wrote by accident would land here
    central = CentralProcess(tmp_path)
    db = await Database.open(central.database_url)
    try:
        credentials = await seed_demo(db)
        _, earlier_token = await db.create_kiosk("Bibliothek")
    finally:
        await db.close()
    german = Catalogues()["de"].messages
    async with aiohttp.ClientSession() as session:
        await central.start(session)
        earlier = Kiosk(central, session, earlier_token)  # arrived first: the unit is number 2
        await earlier.connect()
        await earlier.send(type="visit.request", department="buergerbuero")
        earlier.visit_id = (await earlier.recv("visit.queued"))["visit_id"]

        unit = await start(ApplianceConfig(central_url=central.url, token=credentials["kiosk_token"],
                                           hardware={"backend": "fake"}, kiosk_port=0))
        try:
            await view_until(unit, lambda v: v.online, 30)
            unit.controller.post("choose", "buergerbuero")
            unit.controller.post("confirm")
            await view_until(unit, lambda v: v.screen is Screen.WAITING and v.position == 2, 30)
            visit_id = unit.controller._visit.visit_id
            async with open_page(unit.page_url, "window.amtsklingel && window.amtsklingel.view") as page:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    stopped = earlier.closed()
                    await central.stop(sig)
                    await stopped
                    view = await view_until(unit, lambda v: not v.online, 30)
                    assert view.screen is Screen.WAITING and view.position == 2
                    shown = await poll(lambda: page.evaluate(SHOWN_JS), lambda s: s["restoring"])
                    assert shown["restoring"] == german[RESTORING] and shown["screen"] == "waiting", sig

                    await central.start(session)
                    assert (await earlier.resume())["state"] == "waiting"
                    await view_until(unit, lambda v: v.online and v.position == 2, 30)
                    assert unit.controller._visit.visit_id == visit_id  # the same visit, not a new one
                    shown = await poll(lambda: page.evaluate(SHOWN_JS), lambda s: s["restoring"] is None)
                    assert shown["screen"] == "waiting" and "2" in shown["position"], sig
            unit.controller.post("cancel")
            await view_until(unit, lambda v: v.screen is Screen.IDLE, 30)
            await until(lambda: not unit.controller.has_visit_data, 10, what="central confirming the end of the visit")
        finally:
            await unit.close()
        assert await central.stop(signal.SIGTERM) == 0
    # Only central's own files: the appliance wrote nothing about the visit.
    assert {p.name for p in tmp_path.iterdir()} <= {"central.toml", "central.log", "central.db", "central.db-wal",
                                                    "central.db-shm"}
