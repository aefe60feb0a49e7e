"""A boot that fails reboots instead of leaving the kiosk at a login nobody can use, and every
boot that does not reach a working kiosk is counted on the boot partition."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.image import unitfile
from tests.image.imageroot import REPO

BOOT_COUNT = REPO / "image/config/boot-count"
EMERGENCY = REPO / "image/config/emergency-reboot"
UNIT_DIR = Path("usr/lib/systemd/system")


def _merged(root: Path, unit: str) -> dict[str, list[str]]:
    """"Section.Key" -> values of a unit with its drop-ins, in systemd's order; an empty
    assignment resets the list, as it does for ExecStart=."""
    files = [root / UNIT_DIR / unit, *sorted((root / UNIT_DIR / f"{unit}.d").glob("*.conf"))]
    merged: dict[str, list[str]] = {}
    for path in files:
        for d in unitfile.read(path) if path.exists() else []:
            key = f"{d.section}.{d.key}"
            merged[key] = merged.get(key, []) + [d.value] if d.value else []
    return merged


def test_a_failed_mount_leads_to_emergency_mode(image_root):
    """The path a missing partition takes: local-fs.target fails, emergency.target is started
    (systemd's own units, as the image has them), and emergency.target starts emergency.service."""
    local_fs = _merged(image_root.path, "local-fs.target")
    assert local_fs["Unit.OnFailure"] == ["emergency.target"]
    assert "emergency.service" in " ".join(_merged(image_root.path, "emergency.target").get("Unit.Wants", []) +
                                           _merged(image_root.path, "emergency.target").get("Unit.Requires", []))


@pytest.mark.parametrize("unit", ["emergency.service", "rescue.service"])
def test_emergency_and_rescue_mode_reboot(image_root, unit):
    """No sulogin ("the root account is locked"): the unit shows what failed and reboots."""
    merged = _merged(image_root.path, unit)
    assert merged["Service.ExecStart"] == ["/usr/lib/amtsklingel/emergency-reboot %N"], merged["Service.ExecStart"]
    assert merged.get("Service.ExecStartPre", []) == []
    assert merged["Unit.SuccessAction"] == ["reboot"] and merged["Unit.FailureAction"] == ["reboot-force"]
    assert (image_root.path / "usr/lib/amtsklingel/emergency-reboot").stat().st_mode & 0o111


def _fake_bin(tmp_path: Path) -> Path:
    """systemctl, journalctl and sleep as an emergency would meet them; sleep only records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "systemctl": "echo 'boot-firmware.mount loaded failed failed /boot/firmware'",
        "journalctl": "echo '[   95.100] systemd[1]: Timed out waiting for device /dev/disk/by-partlabel/boot.'",
        "sleep": f"echo \"$1\" > {tmp_path}/slept",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_the_emergency_screen_says_what_failed_then_ends_for_the_reboot(tmp_path):
    env = dict(os.environ, PATH=f"{_fake_bin(tmp_path)}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    done = subprocess.run(["sh", str(EMERGENCY), "emergency"], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr  # SuccessAction=reboot
    assert "Der Kiosk konnte nicht starten" in done.stdout and "The kiosk could not start" in done.stdout
    assert "failed units: boot-firmware.mount" in done.stdout
    assert "Timed out waiting for device" in done.stdout
    assert (tmp_path / "slept").read_text().strip() == "15"


def test_kernel_and_initramfs_failures_reboot_too():
    """A kernel panic, and initramfs-tools failing to find the root (its panic() reads panic=
    from the command line), reboot after 10 s instead of halting or opening a shell."""
    assemble = (REPO / "image/build/assemble.sh").read_text()
    cmdline = re.search(r'^BOOTARGS="([^"]*)"', assemble, re.M).group(1).split()
    assert "panic=10" in cmdline
    sysctl = (REPO / "image/config/sysctl.conf").read_text()
    assert re.search(r"^kernel\.panic = 10$", sysctl, re.M) and re.search(r"^kernel\.panic_on_oops = 1$", sysctl, re.M)


def _count(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(["sh", str(BOOT_COUNT), *args, str(tmp_path / "boot-count")], capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_boots_are_counted_until_one_reaches_a_working_kiosk(tmp_path):
    assert _count(tmp_path, "show").strip() == "0"
    assert _count(tmp_path, "start") == ""
    said = _count(tmp_path, "start")
    assert "1 boot(s) in a row before this one did not reach a working kiosk" in said
    assert _count(tmp_path, "show").strip() == "2"
    _count(tmp_path, "healthy")
    assert (tmp_path / "boot-count").read_text() == "0\n"
    assert not (tmp_path / "boot-count.new").exists()


def test_a_damaged_count_starts_again(tmp_path):
    (tmp_path / "boot-count").write_bytes(b"\x00\xffgarbage")
    _count(tmp_path, "start")
    assert _count(tmp_path, "show").strip() == "1"


def test_boot_count_units_count_early_and_reset_on_a_ready_appliance():
    count = unitfile.read(REPO / "systemd/amtsklingel-boot-count.service")
    healthy = unitfile.read(REPO / "systemd/amtsklingel-boot-healthy.service")
    assert unitfile.values(count, "ExecStart") == ["/usr/lib/amtsklingel/boot-count start"]
    assert unitfile.values(count, "RequiresMountsFor", "Unit") == ["/boot/firmware"]
    assert "local-fs.target" in unitfile.values(count, "Before", "Unit")[0].split()
    assert unitfile.values(count, "DefaultDependencies", "Unit") == ["no"]
    assert unitfile.values(healthy, "ExecStart") == ["/usr/lib/amtsklingel/boot-count healthy"]
    for key in ("Requires", "After"):
        assert "amtsklingel-appliance.service" in unitfile.values(healthy, key, "Unit")[0].split()
