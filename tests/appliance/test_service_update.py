"""The update agent inside the whole appliance process: central's offer through the kiosk's link, the
install into fake slots, the restart announced on the idle screen, and the real trial checks of the
next start (appliance ready, kiosk page, central) committing the new version."""
from __future__ import annotations

import pytest

from appliance.config import ApplianceConfig, ConfigError
from appliance.service.main import start
from appliance.service.power import FakePower
from appliance.update.fake_slots import FakeSlots, fake_bundle
from tests.appliance.bundle_server import PATH, TOKEN, BundleServer, serving
from tests.appliance.fake_central import fake_central
from tests.appliance.update_unit import TIMES
from tests.polling import until


def statuses(conn, state: str) -> list[dict]:
    return [msg for msg in conn.received if msg["type"] == "update.status" and msg["state"] == state]


async def test_an_offer_is_installed_announced_restarted_and_committed_by_the_next_start(tmp_path):
    async with fake_central() as central, serving(BundleServer(fake_bundle("9.9.9"))) as bundles:
        config = ApplianceConfig(central_url=central.url, token=TOKEN, hardware={"backend": "fake"}, kiosk_port=0,
                                 data_dir=tmp_path, update={"backend": "fake"})
        power = FakePower()
        unit = await start(config, power=power)
        try:
            unit.updates.times = TIMES
            unit.updates.central_url = bundles.url  # the fake central's bundles are served apart
            conn = await central.connection(1)
            await conn.send(type="update.offer", bundle_id=7, version="9.9.9", size_bytes=len(bundles.data),
                            sha256=bundles.sha256, path=PATH, window="now")
            await until(lambda: statuses(conn, "rebooting"), what="the restart for the trial")
            await until(lambda: power.reboots)
            announced = statuses(conn, "installed")[-1]["reboot_at"]
            assert announced and unit.controller.view.restart_at == announced  # the idle screen says it
        finally:
            await unit.close()

        assert FakeSlots(tmp_path / "fake-slots.json").reboot() == "B"
        unit = await start(config, power=power)
        try:
            conn = await central.connection(2)
            await until(lambda: statuses(conn, "running"), 30, what="the trial's commit")
            assert statuses(conn, "running")[0]["running_version"] == "9.9.9"
            assert FakeSlots(tmp_path / "fake-slots.json").tries_left()["B"] == 3
        finally:
            await unit.close()


@pytest.mark.parametrize(("update", "error"), [
    ({"backend": "swupdate"}, 'update.backend must be "rauc"'),
    ({"backend": "rauc", "trial_deadline_s": 1}, "trial_deadline_s must be"),
    ({"backend": "rauc", "window": "now"}, "unknown setting"),
])
def test_update_settings_are_checked(update, error):
    with pytest.raises(ConfigError, match=error):
        ApplianceConfig.from_dict({"central_url": "https://central.test", "hardware": {"backend": "fake"},
                                   "token": TOKEN, "update": update})


def test_the_image_setting_is_read_from_its_file(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(f'central_url = "https://central.test"\ntoken = "{TOKEN}"\n[hardware]\nbackend = "fake"\n'
                    '[update]\nbackend = "rauc"\n')
    assert ApplianceConfig.load(path).update == {"backend": "rauc"}
