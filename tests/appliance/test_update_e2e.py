"""The whole update path on one machine: central's rollout offers a real signed bundle, the appliance
process installs it from central's download into fake A/B slots, restarts, passes its trial and runs
it, and central shows it; then a version that fails its health check comes back as rolled back, with
the check, and central's rollout stops there."""
from __future__ import annotations

import pytest
import pytest_asyncio

from appliance.config import ApplianceConfig
from appliance.service.main import start
from appliance.service.power import FakePower
from appliance.update.fake_slots import FakeSlots
from appliance.update.trial import Checks
from central.updates import control
from tests.appliance.update_unit import TIMES
from tests.central.conftest import running_central, update_config
from tests.polling import until, view_until
from tests.rauc_bundles import make_bundle, make_keys, make_stand_in_root

NEXT, BROKEN = "9.9.9+next", "9.9.10+broken"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    directory = tmp_path_factory.mktemp("update-e2e")
    keys = make_keys(directory / "keys")
    return keys, {version: make_bundle(directory / version, keys, version,
                                       root=make_stand_in_root(directory / version, version))
                  for version in (NEXT, BROKEN)}


@pytest_asyncio.fixture
async def central(tmp_path, made):
    keys, _ = made
    config = update_config(tmp_path, keys.ca_pem)
    async with running_central(config) as c:
        yield c


async def boot(config: ApplianceConfig, power: FakePower, checks: Checks | None = None):
    """The appliance starts, as after a (fake) reboot; ``checks`` replace the trial's real ones."""
    unit = await start(config, power=power)
    unit.updates.times = TIMES
    if checks is not None:
        unit.updates.checks = checks  # before its first step: the agent's task has not run yet
    return unit


async def test_a_rollout_reaches_a_kiosk_and_a_failed_trial_comes_back_with_its_reason(central, made, tmp_path):
    _, bundles = made
    admin = next(s for s in await central.db.all_staff() if s.username == "admin")
    kid, token = await central.db.create_kiosk("Bibliothek")
    config = ApplianceConfig(central_url=central.url, token=token, hardware={"backend": "fake"}, kiosk_port=0,
                             data_dir=tmp_path / "kiosk", update={"backend": "fake"})
    slots, power = FakeSlots(tmp_path / "kiosk" / "fake-slots.json", version="9.0.0"), FakePower()
    book = central.hub.updates

    def state() -> str | None:
        found = book.latest.get(kid)
        return found and found.state

    unit = await boot(config, power)
    try:
        await view_until(unit, lambda v: v.online)
        info = await central.app["bundles"].add_file(bundles[NEXT])
        await control.start(central.app, admin, info, [kid], "now", None)
        await until(lambda: power.reboots, 30, what="the restart into the new version")
        assert state() in ("installed", "rebooting")
    finally:
        await unit.close()

    assert slots.reboot() == "B"
    unit = await boot(config, power)
    try:
        await until(lambda: state() == "running", 30, what="central hearing the new version runs")
        assert book.latest[kid].running_version == NEXT
        await until(lambda: book.shown(kid, NEXT) and unit.health.image.version == NEXT)
    finally:
        await unit.close()

    # The next version fails its trial: the kiosk page does not answer in it.
    unit = await boot(config, power)
    try:
        await view_until(unit, lambda v: v.online)
        info = await central.app["bundles"].add_file(bundles[BROKEN])
        await control.start(central.app, admin, info, [kid], "now", None)
        await until(lambda: len(power.reboots) == 2, 30, what="the restart for the second trial")
    finally:
        await unit.close()

    async def page_down() -> bool:
        return False
    assert slots.reboot() == "A"
    unit = await boot(config, power, Checks({"appliance_ready": lambda: _true(), "kiosk_page": page_down}, 5))
    try:
        await until(lambda: len(power.reboots) == 3, 30, what="the restart back into the old version")
    finally:
        await unit.close()

    assert slots.reboot() == "B"  # U-Boot: the failed slot has no tries left
    unit = await boot(config, power)
    try:
        await until(lambda: state() == "rolled_back", 30, what="central hearing of the rollback")
        found = book.latest[kid]
        assert (found.fault, found.check, found.running_version) == ("health_check_failed", "kiosk_page", NEXT)
        await until(lambda: book.rollout is not None and book.rollout.state == "paused", 10, what="the rollout paused")
    finally:
        await unit.close()


async def _true() -> bool:
    return True
