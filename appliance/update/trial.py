"""On every start: what the last boot means for an update, and the trial of a new version.

The marker (marker.py) and the slot that booted tell it apart:

- no marker, or an outcome already: a normal boot. ``mark-good booted`` tops up the tries of the
  slot that runs, so the boot loader keeps it.
- ``downloading``: power or the process went while RAUC wrote the other slot. RAUC took that slot's
  tries away before writing, and the agent marks it bad as well: ``failed`` ``interrupted``. Only
  the process went (the same boot), and RAUC's service finished the slot meanwhile: ``installed``.
  The agent gets here only once RAUC answers, that is once its service has stopped writing.
  The new slot booted all the same (RAUC finished, then a power cut): its trial, as below.
- ``installed``/``rebooting``/``trial`` and the new slot booted: the trial. Every health check must
  pass (:class:`Checks`); then ``mark-good booted`` and ``running``. One fails: its fault goes into
  the marker, ``mark-bad booted``, and the unit restarts into the old slot.
- the same, but the old slot booted (after a new boot): ``rolled_back``, with the failed check from
  the marker, or ``boot_failed`` when there is none (the new version panicked or hung until the
  watchdog and the boot loader's tries gave up on it).
- ``installed`` and still the same boot: only the service restarted; the agent waits for its
  window again.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.update import marker as markers
from appliance.update.marker import Marker
from appliance.update.slots import SlotBackend
from protocol.updates import HealthCheck

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Next = Literal["nothing", "report", "wait_to_reboot", "reboot"]


@dataclass
class Checks:
    """The trial's checks in order; each answers within its own deadline (a check never hangs the trial)."""
    checks: dict[HealthCheck, Check]
    deadline_s: float = 180.0

    async def first_failing(self) -> HealthCheck | None:
        for name, check in self.checks.items():
            try:
                async with asyncio.timeout(self.deadline_s):
                    passed = await check()
            except TimeoutError:
                passed = False
            except Exception:  # noqa: BLE001 - a check that breaks is a failed check, whatever broke
                log.exception("health check %s broke", name)
                passed = False
            log.info("trial health check %s: %s", name, "pass" if passed else "FAIL")
            if not passed:
                return name
        return None


async def after_boot(backend: SlotBackend, path: Path, checks: Checks) -> tuple[Marker | None, Next]:
    """Settle the last update, if any; returns the marker as it stands now and what the agent does next."""
    status = await backend.status()
    boot = backend.boot_id()
    found = markers.load(path)
    if found is None or found.outcome:
        await backend.mark_good("booted")
        return found, "report" if found is not None and not found.reported else "nothing"
    if found.step == "downloading" and not (found.target_slot is not None and status.booted == found.target_slot):
        target = status.slots.get(found.target_slot or "")
        if (found.boot_id == boot and status.primary == found.target_slot and target is not None
                and target.version == found.version):
            # Only the service restarted (its watchdog, a crash) while RAUC's service wrote the slot,
            # and that finished it: the update waits for its window as if this process had seen it.
            log.warning("%s was installed while the appliance restarted", found.version)
            done = found.but(step="installed")
            markers.save(path, done)
            await backend.mark_good("booted")
            return done, "wait_to_reboot"
        log.warning("the installation of %s was interrupted; the other slot is not used", found.version)
        done = found.but(step="failed", fault="interrupted", boot_id=boot)
        markers.save(path, done)
        await backend.mark_bad("other")  # whatever RAUC left there never boots untried
        await backend.mark_good("booted")
        return done, "report"
    if status.booted == found.target_slot and found.target_slot is not None:
        if found.fault is not None:  # the trial already failed in this boot; the restart did not happen
            await backend.mark_bad("booted")
            return found, "reboot"
        markers.save(path, found.but(step="trial", boot_id=boot))
        log.info("trial boot of %s in slot %s: checking its health", found.version, status.booted)
        failed = await checks.first_failing()
        if failed is None:
            await backend.mark_good("booted")
            done = found.but(step="running", boot_id=boot)
            markers.save(path, done)
            log.info("update to %s committed", found.version)
            return done, "report"
        markers.save(path, found.but(step="trial", fault="health_check_failed", check=failed, boot_id=boot))
        await backend.mark_bad("booted")
        log.error("%s failed its health check %s; restarting into the old slot", found.version, failed)
        return markers.load(path), "reboot"
    if found.step == "installed" and found.boot_id == boot:
        await backend.mark_good("booted")
        return found, "wait_to_reboot"  # only the service restarted
    fault = found.fault or "boot_failed"
    log.error("%s did not stay: back in slot %s (%s)", found.version, status.booted, fault)
    done = found.but(step="rolled_back", fault=fault, boot_id=boot)
    markers.save(path, done)
    await backend.mark_good("booted")
    return done, "report"
