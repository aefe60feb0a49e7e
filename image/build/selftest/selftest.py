#!/usr/bin/python3
"""The image's self-test, run at boot only under ``./build.sh image-test`` (amtsklingel.selftest=1).

Each check prints one line to the console, ``AMTSKLINGEL-SELFTEST PASS|FAIL|INFO <name>: <detail>``;
the boot test on the host reads them from QEMU's serial port. The first FAIL ends the test, with
what systemd and the journal say between ``DIAG begin`` and ``DIAG end``. Then the machine
powers off. The checks, by what they look at:
  system_checks.py      boot, read-only root, partitions, boot count, firewall, accounts, sockets
  kiosk_checks.py       the appliance's unit, its page and screen, the network, a visit to central
  call_checks.py        a whole call on the real backends (vivid, snd-aloop) with the host's clerk
  guest_devices.py      those devices and what the appliance does with them (CPU, watchdog, echo)
  loopback_audio.py     the citizen's voice and the microphone's ear at the loopback card (venv Python)
  enrolment_checks.py   enrolment by code (the host claims the code the console shows)
  slot_checks.py        the A/B boot: slot A through U-Boot's boot script, RAUC's view of it
  checklog.py           the console lines and the diagnosis after a failure
Standard library only: it must not depend on what it checks.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from call_checks import clerk_call
from checklog import TAG, diagnose, report, results
from enrolment_checks import built_in_central, central_host, enrol_by_code, token_stored
from kiosk_checks import appliance, central_visit, kiosk_page, kiosk_screen, network
from slot_checks import booted_slot, rauc_sees_the_slot
from system_checks import (
    boot_counted,
    boot_state,
    firewall,
    first_boot_partitions,
    info,
    loopback_only,
    no_passwords,
    partitions,
    read_only_root,
    ssh_off,
)

ENV = Path("/usr/lib/amtsklingel/selftest/selftest.env")


def settings() -> dict[str, str]:
    values = {}
    for line in ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def _central_host() -> str:
    """central_url's host name from the appliance's settings (root may read them)."""
    return central_host()


def main() -> int:
    print(f"{TAG} START", flush=True)
    env = settings()
    unit = env.get("APPLIANCE_UNIT", "")
    host = _central_host()
    # The unit boots without a token: the enrolment comes before everything that needs central.
    steps = [boot_state, read_only_root, partitions, booted_slot, first_boot_partitions, firewall, no_passwords,
             ssh_off, built_in_central, lambda: appliance(unit), boot_counted, rauc_sees_the_slot, kiosk_page,
             lambda: network(host), enrol_by_code, token_stored, central_visit,
             lambda: clerk_call(unit), loopback_only, kiosk_screen, info]
    for step in steps:
        try:
            step()
        except Exception as exc:  # a broken check is a failed one
            report("FAIL", getattr(step, "__name__", "check"), f"{type(exc).__name__}: {exc}")
        # Stop at the first failure: later checks would wait minutes for what cannot come (a
        # visit without a data partition), and the first failure is the one to explain.
        if any(status == "FAIL" for status, _, _ in results):
            diagnose()
            break
    failed = sum(1 for status, _, _ in results if status == "FAIL")
    passed = sum(1 for status, _, _ in results if status == "PASS")
    print(f"{TAG} DONE {passed} passed, {failed} failed", flush=True)
    if os.environ.get("AMTSKLINGEL_SELFTEST_NO_POWEROFF") != "1":
        subprocess.run(["systemctl", "poweroff", "--no-block"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
