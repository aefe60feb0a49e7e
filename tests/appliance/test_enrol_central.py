"""Enrolment against the real central: the unit's code claimed through the admin form, the token
stored, and the same process's kiosk session working with it (a visit reaches the clerk)."""
from __future__ import annotations

import asyncio
import itertools
import re
import stat

from appliance.config import ApplianceConfig
from appliance.controller.view import Screen
from appliance.service.main import start

SERIAL = "fake-0e0101ab"


async def _until(unit, predicate, seconds: float = 15.0):
    async with asyncio.timeout(seconds):
        for _ in itertools.count():
            if predicate(unit.controller.view):
                return unit.controller.view
            await asyncio.sleep(0.05)


async def _claim(central, code: str, location: str, departments: list[str]) -> str:
    admin = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    async with admin.get(f"{central.url}/admin/kiosks/enrol", params={"code": code}) as r:
        page = await r.text()
        assert r.status == 200, page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = [("csrf_token", csrf), ("code", code), ("location", location)] + [("departments", d) for d in departments]
    async with admin.post(f"{central.url}/admin/kiosks/enrol", data=form) as r:
        answer = await r.text()
        assert r.status == 200, answer
    return answer


async def test_the_code_claimed_in_central_enrols_the_unit_and_its_session_works(central, tmp_path):
    config = ApplianceConfig(central_url=central.url, data_dir=tmp_path, kiosk_port=0,
                             hardware={"backend": "fake", "unit": {"serial": SERIAL}})
    unit = await start(config)
    try:
        view = await _until(unit, lambda v: v.screen is Screen.ENROL and v.enrol.code)
        assert view.enrol.serial == SERIAL
        assert view.enrol.claim_url.endswith(f"/admin/kiosks/enrol?code={view.enrol.code}")
        await _claim(central, view.enrol.code, "Bücherei Musterdorf", ["standesamt"])

        view = await _until(unit, lambda v: v.screen is Screen.IDLE and v.online)
        assert view.location == "Bücherei Musterdorf"
        token = (tmp_path / "kiosk-token").read_text().strip()
        assert stat.S_IMODE((tmp_path / "kiosk-token").stat().st_mode) == 0o600
        assert ApplianceConfig.from_dict({"central_url": central.url, "data_dir": str(tmp_path),
                                          "hardware": {"backend": "fake"}}).token == token  # the next start

        clerk = await central.clerk()
        unit.controller.post("choose", "standesamt")
        await _until(unit, lambda v: v.screen is Screen.CONSENT)
        unit.controller.post("confirm")
        await _until(unit, lambda v: v.position == 1)
        joined = await clerk.recv("queue.joined")
        assert joined["visit"]["department"] == "standesamt"
        assert joined["visit"]["kiosk_location"] == "Bücherei Musterdorf"
    finally:
        await unit.close()
