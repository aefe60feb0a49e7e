"""The running appliance reports its health to a real central: at once on connecting, again when a device
fails, with the round trip measured by its pings."""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import ApplianceConfig
from appliance.service.main import start


@pytest.fixture
async def appliance(central):
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake", "unit": {"serial": "fake-0042"}}, kiosk_port=0)
    unit = await start(config)
    yield unit
    await unit.close()


async def health_at_central(central, predicate, seconds=10.0):
    async with asyncio.timeout(seconds):
        while True:
            reports = [k.health for k in central.hub.fleet.kiosks.values() if k.online and k.health is not None]
            if reports and predicate(reports[0]):
                return reports[0]
            await asyncio.sleep(0.05)


async def test_health_reaches_central_and_follows_a_failing_camera(central, appliance):
    first = await health_at_central(central, lambda h: True)
    assert first.devices["camera"].state == "unknown" and first.cpu_temp_c is not None
    appliance.health.min_gap_s = 0  # the test need not wait for the spacing of reports
    appliance.devices.fault("camera", "camera_failed")
    report = await health_at_central(central, lambda h: h.devices["camera"].state == "failed")
    assert report.faults[0].code == "camera_failed"
    appliance.hardware.unit.overheat()
    appliance.health.changed()
    report = await health_at_central(central, lambda h: h.rtt_ms is not None and "throttled" in h.throttling)
    assert report.rtt_ms >= 0 and report.cpu_temp_c >= 80
