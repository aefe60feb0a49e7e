"""The systemd units: valid for systemd, hardened as docs/security.md says, every restriction explained."""
from __future__ import annotations

import re

import pytest

from tests.image import imageroot, unitfile
from tests.image.imageroot import REPO, UNITS

SYSTEMD = REPO / "systemd"

# Hardening every unit carries: directive -> the value it must have.
COMMON = {
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectHome": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "PrivateMounts": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
}
REQUIRED = {
    "amtsklingel-appliance.service": COMMON | {
        "Type": "notify",
        "WatchdogSec": "30",
        "Restart": "always",
        "RestartSec": "5",
        "RestartPreventExitStatus": "2",
        "User": "amtsklingel",
        "SupplementaryGroups": "video gpio audio",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "DevicePolicy": "closed",
        "DeviceAllow": ["char-video4linux rw", "char-media rw", "char-dma_heap rw", "char-gpiochip rw",
                        "char-alsa rw"],
        "SystemCallFilter": ["@system-service", "~@privileged @resources", "setpriority"],
        "MemoryDenyWriteExecute": None,  # see test_sandbox.py
        "RestrictNamespaces": "yes",
        "ProtectProc": "invisible",
        "PrivateIPC": "yes",
        "UMask": "0077",
        "LimitCORE": "0",
        "LimitNICE": "-10",  # the microphone's process before the call's video, no higher
        "RuntimeDirectory": "amtsklingel",
        "ReadWritePaths": ["/var/lib/amtsklingel", "-/sys/devices/platform"],
    },
    "amtsklingel-kiosk.service": COMMON | {
        "MemoryDenyWriteExecute": None,  # JavaScript and WebAssembly JITs
        "RestrictNamespaces": None,      # Chromium's sandbox
        "User": "kiosk",
        "SupplementaryGroups": "render",
        "Restart": "always",
        "PAMName": "amtsklingel-kiosk",
        "TTYPath": "/dev/tty1",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "IPAddressDeny": "any",
        "IPAddressAllow": "localhost",
        "DevicePolicy": "closed",
        "DeviceAllow": ["char-drm rw", "char-input r", "/dev/tty1 rw"],
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "ProtectProc": "invisible",
        "LimitCORE": "0",
        "RuntimeDirectory": "amtsklingel-kiosk",
    },
    "amtsklingel-firstboot.service": COMMON | {
        "Type": "oneshot",
        "ReadWritePaths": "/var/lib/amtsklingel /boot/firmware",
        "PrivateNetwork": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX",
        "SystemCallFilter": "@system-service",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
    },
    "amtsklingel-grow-disk.service": COMMON | {
        "Type": "oneshot",
        "PrivateTmp": None,  # early boot: see test_early_units_stay_before_local_fs
        "CapabilityBoundingSet": "",
        "PrivateNetwork": "yes",
        "PrivateDevices": None,  # it writes the disk's partition table
        "RestrictAddressFamilies": "AF_UNIX",
        "SystemCallFilter": "@system-service",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
    },
    "amtsklingel-boot-count.service": COMMON | {
        "Type": "oneshot",
        "PrivateTmp": None,  # early boot: see test_early_units_stay_before_local_fs
        "ReadWritePaths": "/boot/firmware",
        "CapabilityBoundingSet": "",
        "PrivateNetwork": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX",
        "SystemCallFilter": "@system-service",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
        "UMask": "0077",
    },
    "amtsklingel-boot-healthy.service": COMMON | {
        "Type": "oneshot",
        "ReadWritePaths": "/boot/firmware",
        "CapabilityBoundingSet": "",
        "PrivateNetwork": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX",
        "SystemCallFilter": "@system-service",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
        "UMask": "0077",
    },
}
# Directives that restrict the process: each needs a comment saying why it is safe.
HARDENING = set(COMMON) | {
    "CapabilityBoundingSet", "AmbientCapabilities", "RestrictAddressFamilies", "DevicePolicy", "DeviceAllow",
    "SystemCallFilter", "MemoryDenyWriteExecute", "RestrictNamespaces", "ProtectProc", "ProcSubset", "PrivateIPC",
    "RemoveIPC", "UMask", "LimitCORE", "LimitNICE", "IPAddressDeny", "IPAddressAllow", "PrivateNetwork", "PrivateDevices",
    "PrivateUsers", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
}
# A directive may share the comment of the directive just above it only when both are
# one setting spread over two keys, or (the kernel family) restrictions with one reason.
FAMILIES = [
    {"ProtectSystem", "ReadWritePaths"},
    {"CapabilityBoundingSet", "AmbientCapabilities"},
    {"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
     "ProtectHostname"},
    {"DevicePolicy", "DeviceAllow"},
    {"SystemCallFilter", "SystemCallErrorNumber"},
    {"PrivateIPC", "RemoveIPC"},
    {"IPAddressDeny", "IPAddressAllow"},
    {"PrivateNetwork", "RestrictAddressFamilies"},
]
# systemd-analyze security's exposure score (0 = fully locked down, 10 = nothing).
MAX_EXPOSURE = {"amtsklingel-appliance.service": 2.0, "amtsklingel-kiosk.service": 3.0,
                "amtsklingel-firstboot.service": 2.0, "amtsklingel-grow-disk.service": 2.0,
                "amtsklingel-boot-count.service": 2.0, "amtsklingel-boot-healthy.service": 2.0}


def _family(key: str) -> set[str]:
    return next((f for f in FAMILIES if key in f), {key})


@pytest.mark.parametrize("unit", UNITS)
def test_required_directives(unit):
    directives = unitfile.read(SYSTEMD / unit)
    for key, wanted in REQUIRED[unit].items():
        found = unitfile.values(directives, key)
        if wanted is None:
            assert found == [], f"{unit}: {key}= must not be set (the unit's comments say why)"
        elif isinstance(wanted, list):
            assert found == wanted, f"{unit}: {key}= is {found}, expected {wanted}"
        else:
            assert found == [wanted], f"{unit}: {key}= is {found}, expected exactly [{wanted!r}]"


@pytest.mark.parametrize("unit", [*UNITS, "ssh.service.d/amtsklingel.conf"])
def test_every_hardening_line_says_why(unit):
    directives = unitfile.read(SYSTEMD / unit)
    above = None
    for d in directives:
        if d.key in HARDENING:
            explained = d.previous.startswith("#") or (
                above is not None and d.previous.startswith(above.key + "=") and d.key in _family(above.key))
            assert explained, f"{unit}:{d.line}: {d.key}= has no comment saying why it is safe"
        above = d


def test_appliance_writes_only_the_data_partition():
    """Besides its runtime directory and private /tmp (memory), only the data partition, for its
    token and the settings from central (which files there it may change: test_accounts.py)."""
    directives = unitfile.read(SYSTEMD / "amtsklingel-appliance.service")
    # and the backlight's files, which udev gives its group (brightness, screen off outside office hours)
    assert unitfile.values(directives, "ReadWritePaths") == ["/var/lib/amtsklingel", "-/sys/devices/platform"]
    for key in ("StateDirectory", "CacheDirectory", "LogsDirectory", "BindPaths"):
        assert unitfile.values(directives, key) == [], key
    assert unitfile.values(directives, "WorkingDirectory") == ["/run/amtsklingel"]


def test_kiosk_needs_the_appliance_and_the_appliance_upholds_the_kiosk():
    kiosk = unitfile.read(SYSTEMD / "amtsklingel-kiosk.service")
    appliance = unitfile.read(SYSTEMD / "amtsklingel-appliance.service")
    assert unitfile.values(kiosk, "Requires", "Unit") == ["amtsklingel-appliance.service"]
    assert "amtsklingel-appliance.service" in " ".join(unitfile.values(kiosk, "After", "Unit"))
    assert unitfile.values(appliance, "Upholds", "Unit") == ["amtsklingel-kiosk.service"]
    assert unitfile.values(kiosk, "Conflicts", "Unit") == ["getty@tty1.service"]


def test_systemd_analyze_verify(image_root):
    """systemd's own parser accepts every unit and drop-in, with not even a warning."""
    result = imageroot.run(imageroot.require("systemd-analyze"), "verify", f"--root={image_root.path}", "--man=no",
                           *UNITS, "ssh.service", "rauc.service", check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert image_root.stubs <= set(imageroot.IMAGE_PROVIDES), \
        f"programs neither shipped here nor listed in IMAGE_PROVIDES: {image_root.stubs - set(imageroot.IMAGE_PROVIDES)}"


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score(image_root, unit):
    result = imageroot.run(imageroot.require("systemd-analyze"), "security", "--offline=yes",
                           f"--root={image_root.path}", "--no-pager", unit, check=False)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert score, result.stdout + result.stderr
    assert float(score.group(1)) <= MAX_EXPOSURE[unit], result.stdout


def test_presets_and_masks(image_root):
    """After ``systemctl preset-all`` (what the build runs) the right units start at boot."""
    systemctl = imageroot.require("systemctl")
    imageroot.run(systemctl, f"--root={image_root.path}", "preset-all")

    def state(unit: str) -> str:
        return imageroot.run(systemctl, f"--root={image_root.path}", "is-enabled", unit, check=False).stdout.strip()

    for unit in (*UNITS, "nftables.service", "ssh.service"):
        assert state(unit) == "enabled", unit
    for unit in ("ctrl-alt-del.target", "getty@.service", "serial-getty@.service", "autovt@.service",
                 "ssh.socket", "systemd-firstboot.service", "bluetooth.service", "avahi-daemon.service",
                 "udisks2.service"):
        assert state(unit) == "masked", unit
    assert (image_root.path / "etc/systemd/system/default.target").readlink().name == "graphical.target"
