"""The update agent through a unit's whole life, against fake slots (U-Boot + RAUC in a file) and a
bundle server that behaves as central's download."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json

import pytest

from appliance.controller.view import DepartmentChoice, Screen
from appliance.update.fake_slots import fake_bundle
from protocol.messages import Ping
from protocol.updates import UpdateWithdraw
from tests.appliance.bundle_server import BundleServer, serving
from tests.appliance.update_unit import Unit
from tests.polling import until


@pytest.fixture
async def unit(tmp_path):
    async with serving(BundleServer(fake_bundle("2.0"))) as server:
        unit = Unit(tmp_path, server)
        yield unit
        if unit.agent is not None:
            await unit.agent.close()


def marker(unit: Unit) -> dict:
    return json.loads((unit.data_dir / "update.json").read_text())


async def installed_and_rebooted(unit: Unit, **offer) -> None:
    agent = await unit.boot()
    await agent.handle(unit.offer(**offer))
    await unit.reached("rebooting")
    await unit.rebooted()
    assert marker(unit)["step"] == "rebooting"


async def test_offer_install_reboot_trial_passes_and_the_new_version_runs(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer())
    await unit.reached("rebooting")
    states = unit.states()
    assert states[0] == "offered" and states[-2:] == ["installed", "rebooting"]
    downloading = [s for s in unit.sent if s.state == "downloading"]
    assert downloading[0].progress_pct == 0 and downloading[-1].downloaded_bytes > 0
    percents = [s.progress_pct for s in downloading]
    assert percents == sorted(percents) and len(percents) >= 5  # in order, every 5 % (the fake reads 64 kB blocks)
    assert states.index("installed") > max(i for i, state in enumerate(states) if state == "downloading")
    installed = [s for s in unit.sent if s.state == "installed"]
    assert installed[-1].reboot_at is not None  # announced ...
    assert unit.controller.restarts_shown  # ... on the idle screen before the restart
    assert all(s.running_version == "1.0" for s in unit.sent)
    await unit.rebooted()
    assert (await unit.slots.status()).primary == "B"

    assert unit.slots.reboot() == "B"  # U-Boot: the new slot first, one try fewer
    agent = await unit.boot()
    running = await unit.reached("running")
    assert running.running_version == "2.0" and agent.running_version == "2.0"
    assert unit.slots.tries_left()["B"] == 3  # committed: mark-good topped the tries up
    assert marker(unit)["step"] == "running"

    await agent.handle(unit.offer())  # central offers it again on the next connection
    await until(lambda: len(unit.sent) == 2)
    assert unit.sent[-1].state == "running"


async def test_a_failed_health_check_rolls_back_and_says_which(unit):
    await installed_and_rebooted(unit)
    assert unit.slots.reboot() == "B"

    async def page_broken() -> bool:
        return False
    checks = {"appliance_ready": lambda: asyncio.sleep(0, True), "kiosk_page": page_broken,
              "central": lambda: asyncio.sleep(0, True)}
    agent = await unit.boot(checks)
    assert len(unit.power.reboots) == 2  # straight back to the old slot
    assert unit.slots.tries_left()["B"] == 0 and unit.sent == []
    await agent.handle(unit.offer())  # central's offer on connecting, before the restart took effect
    await asyncio.sleep(0.2)
    assert unit.sent == []  # never "running" for the version that just failed

    assert unit.slots.reboot() == "A"
    agent = await unit.boot()
    rolled = await unit.reached("rolled_back")
    assert (rolled.fault, rolled.check, rolled.running_version) == ("health_check_failed", "kiosk_page", "1.0")
    assert agent.running_version == "1.0"

    await agent.handle(unit.offer())  # offered again: the same answer, never a second try
    await until(lambda: len(unit.sent) == 2)
    assert unit.sent[-1].state == "rolled_back" and len(unit.power.reboots) == 2


async def test_a_new_version_that_hangs_falls_back_by_the_boot_counter(unit):
    await installed_and_rebooted(unit)
    booted = [unit.slots.reboot() for _ in range(4)]  # it hangs each time; the watchdog resets the unit
    assert booted == ["B", "B", "B", "A"]
    await unit.boot()
    rolled = await unit.reached("rolled_back")
    assert rolled.fault == "boot_failed" and rolled.check is None


async def test_a_check_that_never_answers_fails_within_its_deadline(unit):
    await installed_and_rebooted(unit)
    unit.slots.reboot()

    async def hangs() -> bool:
        await asyncio.sleep(3600)
        return True
    await unit.boot({"appliance_ready": lambda: asyncio.sleep(0, True), "central": hangs})
    assert marker(unit)["check"] == "central" and len(unit.power.reboots) == 2


async def test_power_lost_while_installing_is_reported_as_interrupted(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer(max_kbit_s=800))  # 100 kB/s: a few seconds for the bundle
    await unit.reached("downloading")
    await until(lambda: marker(unit)["step"] == "downloading")
    await agent.close()  # power gone
    assert unit.slots.tries_left()["B"] == 0  # RAUC took the target's tries before writing
    assert unit.slots.reboot() == "A"
    await unit.boot()
    failed = await unit.reached("failed")
    assert failed.fault == "interrupted"

    unit.sent.clear()
    await unit.agent.handle(unit.offer())  # and it can install again
    await unit.reached("rebooting")


async def test_never_while_a_citizen_waits_or_talks(unit):
    agent = await unit.boot()
    unit.controller.show(screen=Screen.WAITING)
    unit.controller.busy = True
    await agent.handle(unit.offer())
    await unit.reached("offered")
    await asyncio.sleep(0.3)
    assert unit.states() == ["offered"]
    unit.controller.busy = False
    unit.controller.show(screen=Screen.IDLE)
    await unit.reached("installed")

    # A citizen arrives while the restart is announced: no restart until they are done.
    await until(lambda: unit.controller.view.restart_at)
    unit.controller.busy = True
    unit.controller.show(screen=Screen.IN_CALL)
    await asyncio.sleep(0.4)
    assert not unit.power.reboots and "rebooting" not in unit.states()
    unit.controller.busy = False
    unit.controller.show(screen=Screen.IDLE)
    await unit.reached("rebooting")


async def test_outside_hours_waits_until_every_offered_department_is_closed(unit):
    agent = await unit.boot()
    later = (unit.now + dt.timedelta(hours=12)).isoformat()
    unit.controller.show(departments=(DepartmentChoice("a", "A", True), DepartmentChoice("b", "B", False, later)))
    await agent.handle(unit.offer(window="outside_hours"))
    await unit.reached("offered")
    await asyncio.sleep(0.3)
    assert unit.states() == ["offered"]  # one is open
    unit.controller.show(departments=(DepartmentChoice("a", "A", False, later), DepartmentChoice("b", "B", False, later)))
    await unit.reached("installed")
    # The opening time passed (the injected clock) and central has not said so yet: no restart.
    unit.now += dt.timedelta(hours=13)
    await asyncio.sleep(0.4)
    assert not unit.power.reboots
    unit.now -= dt.timedelta(hours=13)
    unit.controller.show()
    await unit.reached("rebooting")


async def test_offline_is_never_outside_hours(unit):
    agent = await unit.boot()
    unit.controller.show(online=False, departments=(DepartmentChoice("a", "A", False),))
    await agent.handle(unit.offer(window="outside_hours"))
    await unit.reached("offered")
    await asyncio.sleep(0.3)
    assert unit.states() == ["offered"]


async def test_withdrawn_before_the_window_nothing_is_installed(unit):
    agent = await unit.boot()
    unit.controller.busy = True
    await agent.handle(unit.offer())
    await unit.reached("offered")
    assert not await agent.handle(Ping(type="ping"))  # not an update message: the controller's
    await agent.handle(UpdateWithdraw(type="update.withdraw", bundle_id=7))
    unit.controller.busy = False
    unit.controller.show()
    await asyncio.sleep(0.3)
    assert unit.states() == ["offered"] and unit.server.sent == 0


async def test_withdrawn_once_installed_the_new_slot_never_boots(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer(window="outside_hours"))  # installed now? no: the office is open
    unit.controller.show(departments=(DepartmentChoice("a", "A", False),))
    await unit.reached("installed")
    unit.controller.show(departments=(DepartmentChoice("a", "A", True),))  # opens before the restart
    await asyncio.sleep(0.2)
    await agent.handle(UpdateWithdraw(type="update.withdraw", bundle_id=7))
    await until(lambda: not (unit.data_dir / "update.json").exists())
    assert not unit.power.reboots and unit.controller.view.restart_at is None
    assert unit.slots.reboot() == "A"  # a power cut now still boots the old version


async def test_a_bundle_central_refuses_is_reported_as_a_failed_download(unit):
    agent = await unit.boot()
    unit.server.status = 404
    await agent.handle(unit.offer())
    failed = await unit.reached("failed")
    assert failed.fault == "download_failed" and not unit.power.reboots
    assert (await unit.slots.status()).primary == "A"


async def test_a_failed_installation_is_tried_again_by_itself(unit):
    unit.times = dataclasses.replace(unit.times, install_retry_s=(0.05,))
    agent = await unit.boot()
    unit.slots.fail_next = ("install_failed", "Failed to write slot: rauc-service was busy")
    await agent.handle(unit.offer())
    failed = await unit.reached("failed")
    assert failed.fault == "install_failed" and not unit.power.reboots
    # No new offer from central: the unit tries again after its pause, and this time it installs.
    await unit.reached("rebooting")
    assert marker(unit)["step"] == "rebooting"


async def test_an_incompatible_bundle_fails_without_a_restart(unit):
    unit.server.data = fake_bundle("2.0", compatible="another-unit")
    agent = await unit.boot()
    await agent.handle(unit.offer())
    failed = await unit.reached("failed")
    assert failed.fault == "incompatible" and not unit.power.reboots
    before, fetched = len(unit.sent), unit.server.sent
    await agent.handle(unit.offer())  # offered again: the same answer, not a second download
    await until(lambda: len(unit.sent) == before + 1)
    assert unit.sent[-1].state == "failed" and unit.sent[-1].fault == "incompatible"
    assert unit.server.sent == fetched


async def test_the_version_already_running_is_answered_with_running(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer(version="1.0"))
    assert (await unit.reached("running")).running_version == "1.0"


async def test_a_restart_of_the_service_keeps_an_installed_update_waiting_for_its_window(unit):
    agent = await unit.boot()
    agent.times = dataclasses.replace(agent.times, announce_s=30)
    await agent.handle(unit.offer(window="outside_hours"))
    unit.controller.show(departments=(DepartmentChoice("a", "A", False),))
    await unit.reached("installed")
    unit.controller.show(departments=(DepartmentChoice("a", "A", True),))  # an office opens: no restart yet
    await unit.boot()  # the service restarts (same boot of the unit)
    assert unit.states() == ["installed"] and not unit.power.reboots
    unit.controller.show(departments=(DepartmentChoice("a", "A", False),))
    await unit.reached("rebooting")
    await unit.rebooted()
    assert unit.slots.reboot() == "B"


async def test_withdrawn_while_downloading_the_slot_is_finished_but_never_booted(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer(max_kbit_s=1000))  # 125 kB/s: about two seconds
    await unit.reached("downloading")
    await agent.handle(UpdateWithdraw(type="update.withdraw", bundle_id=7))
    await until(lambda: unit.server.sent >= len(unit.server.data), what="the whole bundle read")
    await until(lambda: not (unit.data_dir / "update.json").exists(), what="the marker removed")
    await asyncio.sleep(0.3)
    assert unit.states()[-1] == "downloading" and not unit.power.reboots
    assert unit.slots.tries_left()["B"] == 0 and unit.slots.reboot() == "A"


async def test_a_restart_that_fails_is_no_longer_announced(unit):
    unit.power.fail()
    agent = await unit.boot()
    await agent.handle(unit.offer())
    await unit.reached("rebooting")
    await until(lambda: unit.controller.view.restart_at is None and unit.controller.restarts_shown)
    assert agent.reboots == 1


async def test_slots_that_answer_only_after_a_while_still_settle_the_trial(unit):
    await installed_and_rebooted(unit)
    unit.slots.reboot()
    state = unit.slots.path.read_text()
    unit.slots.path.write_text("rauc-service not up yet")  # unreadable: SlotError
    asyncio.get_running_loop().call_later(0.03, unit.slots.path.write_text, state)
    await unit.boot()
    assert (await unit.reached("running")).running_version == "2.0"


async def test_slots_busy_when_an_offer_comes_the_unit_says_so_and_tries_again(unit):
    # RAUC's service answers nothing while it works on an installation (its "already processing a
    # different method"); the offer must not vanish with only "offered" said.
    unit.times = dataclasses.replace(unit.times, install_retry_s=(0.05,))
    agent = await unit.boot()
    unit.slots.busy = True
    await agent.handle(unit.offer())
    failed = await unit.reached("failed")
    assert failed.fault == "install_failed" and not unit.power.reboots
    unit.slots.busy = False
    await unit.reached("rebooting")  # tried again by itself, and installed this time
    assert (await unit.slots.status()).primary == "B"


async def test_an_install_busy_in_rauc_is_tried_again_by_itself(unit):
    unit.times = dataclasses.replace(unit.times, install_retry_s=(0.05,))
    agent = await unit.boot()
    unit.slots.busy_on_install = True  # the status answers, the install is refused
    await agent.handle(unit.offer())
    failed = await unit.reached("failed")
    assert failed.fault == "install_failed"
    await unit.reached("rebooting")


async def test_the_service_restarting_while_rauc_installs_keeps_the_installation(unit):
    # The appliance is restarted (its watchdog, a crash) while RAUC's service writes the other slot:
    # the new process finds "downloading" in the same boot, and RAUC busy until it has finished.
    unit.times = dataclasses.replace(unit.times, announce_s=30)
    agent = await unit.boot()
    await agent.handle(unit.offer(max_kbit_s=800))
    await unit.reached("downloading")
    await agent.close()  # the process is gone; RAUC's service goes on ...
    unit.slots.busy = True
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, unit.slots.finish_install, "2.0")  # ... and finishes the slot
    loop.call_later(0.3, setattr, unit.slots, "busy", False)
    unit.times = dataclasses.replace(unit.times, slot_attempts=2)  # fewer than the busy time takes
    await unit.boot()
    installed = await unit.reached("installed")
    assert installed.version == "2.0" and "failed" not in unit.states()
    assert marker(unit)["step"] == "installed"


async def test_the_service_restarting_after_rauc_failed_gives_the_slot_up(unit):
    agent = await unit.boot()
    await agent.handle(unit.offer(max_kbit_s=800))
    await unit.reached("downloading")
    await agent.close()  # the process is gone, and RAUC's installation fails meanwhile
    await unit.boot()
    failed = await unit.reached("failed")
    assert failed.fault == "interrupted"
    assert unit.slots.reboot() == "A"  # nothing boots the half-written slot


async def test_an_untried_slot_booted_from_downloading_gets_its_trial(unit):
    # RAUC finished the slot while no agent watched, and the unit restarted (a power cut): the slot
    # is not committed by that boot unless its health checks pass.
    agent = await unit.boot()
    await agent.handle(unit.offer(max_kbit_s=800))
    await unit.reached("downloading")
    await agent.close()
    unit.slots.finish_install("2.0")
    assert unit.slots.reboot() == "B"

    async def broken() -> bool:
        return False
    await unit.boot({"appliance_ready": broken})
    assert marker(unit)["fault"] == "health_check_failed" and unit.power.reboots
    assert unit.slots.tries_left()["B"] == 0
