"""Checks of the A/B boot: the guest came up through U-Boot's boot script in slot A, and RAUC, asked
as root and as the appliance's user (the D-Bus policy), sees the same. docs/decisions/0006-ab-boot-with-u-boot.md."""
from __future__ import annotations

import json
from pathlib import Path

from checklog import check, report, run

SLOT_PARTITION = {"A": "rootfs-a", "B": "rootfs-b"}


def _rauc_status(*as_user: str) -> tuple[dict, str]:
    """``rauc status`` as the appliance's update agent asks it (the rauc CLI over D-Bus)."""
    out = run(*as_user, "rauc", "status", "--output-format=json", timeout=180)
    try:
        return json.loads(out[out.index("{"):]), out
    except ValueError:
        return {}, out


def booted_slot() -> None:
    cmdline = Path("/proc/cmdline").read_text().split()
    args = dict(arg.split("=", 1) for arg in cmdline if "=" in arg)
    slot = args.get("rauc.slot", "")
    root = run("findmnt", "-no", "SOURCE", "/")
    label = run("lsblk", "-no", "PARTLABEL", root) if root.startswith("/dev/") else "?"
    partuuid = run("lsblk", "-no", "PARTUUID", root) if root.startswith("/dev/") else "?"
    # The boot script put both there: rauc.slot= and the PARTUUID of that slot's partition.
    check("booted-slot-a-through-u-boot",
          slot == "A" and label == SLOT_PARTITION["A"] and args.get("root", "").lower() == f"partuuid={partuuid}".lower(),
          f"rauc.slot={slot or 'missing'}, {args.get('root', 'no root=')}, / on {root} ({label})")
    slots = run("fw_printenv", "BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT")
    report("INFO", "slot-variables", slots.replace("\n", ", "))


def rauc_sees_the_slot() -> None:
    status, out = _rauc_status()
    check("rauc-booted-a", status.get("booted") == "A" and status.get("compatible") == "amtsklingel-rpi-arm64",
          f"booted {status.get('booted')}, compatible {status.get('compatible')}, primary {status.get('boot_primary')}"
          if status else out[-300:])
    # The appliance runs as amtsklingel and drives RAUC through the same CLI (image/config/dbus-rauc.conf).
    status, out = _rauc_status("setpriv", "--reuid=amtsklingel", "--regid=amtsklingel", "--clear-groups")
    check("rauc-for-the-appliance", status.get("booted") == "A",
          "user amtsklingel may ask rauc-service" if status else out[-300:])
