"""image/config/fstab, read by systemd's own fstab generator as at boot."""
from __future__ import annotations

import configparser
import os
import re

import pytest

from tests.image import imageroot, unitfile
from tests.image.imageroot import REPO

GENERATOR = "/usr/lib/systemd/system-generators/systemd-fstab-generator"
CMDLINE = "console=serial0,115200 root=PARTLABEL=rootfs-a rootfstype=ext4 ro rootwait"


@pytest.fixture(scope="module")
def generated(image_root):
    """The mount units systemd makes of our fstab, in a unit directory of the scratch root
    (not the generator directory, which ``systemd-analyze verify --root`` does not search)."""
    if not os.access(GENERATOR, os.X_OK):
        pytest.fail(f"{GENERATOR} is missing: ./build.sh test installs systemd")
    out = image_root.path / "run/systemd/system"
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SYSTEMD_FSTAB=str(REPO / "image/config/fstab"), SYSTEMD_PROC_CMDLINE=CMDLINE,
               SYSTEMD_IN_INITRD="0")
    result = imageroot.run(GENERATOR, str(out), str(out), str(out), env=env, check=False)
    assert result.returncode == 0 and "rror" not in result.stderr, result.stderr
    programs = set()
    for unit in out.glob("*.*"):
        if unit.is_file():
            programs |= imageroot.exec_paths(unit.read_text())
    stubs = imageroot.stub_programs(image_root.path, programs)
    assert stubs <= set(imageroot.IMAGE_PROVIDES), stubs
    return out


def _mount(generated, name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(generated / name)
    return dict(parser["Mount"])


def _options(mount: dict[str, str]) -> set[str]:
    return set(mount["Options"].split(","))


def test_root_is_read_only(generated):
    assert "ro" in _options(_mount(generated, "-.mount"))


def test_data_partition(generated):
    data = _mount(generated, "var-lib-amtsklingel.mount")
    assert data["What"] == "/dev/disk/by-partlabel/data"
    assert {"nodev", "nosuid", "noexec", "nofail"} <= _options(data)
    # systemd-repart formats it when it creates it (image/config/repart.d); a makefs unit of
    # its own would race repart for the new partition.
    assert not list(generated.glob("systemd-makefs@*")), "fstab must not format the data partition itself"


def test_boot_partition_keeps_enrolment_files_root_only(generated):
    boot = _mount(generated, "boot-firmware.mount")
    assert boot["What"] == "/dev/disk/by-partlabel/boot"
    assert {"nodev", "nosuid", "noexec", "umask=0077"} <= _options(boot)


@pytest.mark.parametrize("unit", ["var.mount", "tmp.mount"])
def test_writable_places_are_in_memory(generated, unit):
    mount = _mount(generated, unit)
    assert mount["Type"] == "tmpfs"
    assert {"nodev", "nosuid"} <= _options(mount) and any(o.startswith("size=") for o in _options(mount))


def test_nothing_else_is_mounted_writable_from_disk(generated):
    """Only the data and boot partitions are writable disk file systems; no swap."""
    disk_mounts = set()
    for path in generated.glob("*.mount"):
        mount = _mount(generated, path.name)
        if mount.get("Type") != "tmpfs" and "ro" not in _options(mount):
            disk_mounts.add(mount["Where"])
    assert disk_mounts == {"/var/lib/amtsklingel", "/boot/firmware"}
    assert not list(generated.glob("*.swap"))


def test_generated_units_verify(generated, image_root):
    units = sorted(p.name for p in generated.glob("*.mount"))
    result = imageroot.run(imageroot.require("systemd-analyze"), "verify", f"--root={image_root.path}", "--man=no",
                           "--", *units, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr


UDEV_EVENT_TIMEOUT_S = 180  # systemd-udevd's event_timeout (udev.conf(5))


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*([a-z]*)", value):
        total += float(number) * units[unit or "s"]
    return total


def _device_settings(image_root, generated, device: str) -> dict[str, list[str]]:
    """[Unit] settings of a device unit from all its drop-ins: ours (MANIFEST) and the generator's."""
    found: dict[str, list[str]] = {}
    for directory in (image_root.path / "usr/lib/systemd/system", generated):
        for conf in sorted((directory / f"{device}.d").glob("*.conf")):
            for d in unitfile.read(conf):
                if d.section == "Unit":
                    found.setdefault(d.key, []).extend(d.value.split())
    return found


@pytest.mark.parametrize("label", ["boot", "data"])
def test_partitions_are_waited_for_once_the_table_is_final(image_root, generated, label):
    """No device timer runs while the first boot is still making the partition table: the wait
    for a partition starts after grow-disk and systemd-repart, then has a generous limit."""
    device = imageroot.run(imageroot.require("systemd-escape"), "--path", "--suffix=device",
                           f"/dev/disk/by-partlabel/{label}").stdout.strip()
    settings = _device_settings(image_root, generated, device)
    assert {"amtsklingel-grow-disk.service", "systemd-repart.service"} <= set(settings.get("After", [])), settings
    timeouts = settings.get("JobRunningTimeoutSec", []) + settings.get("JobTimeoutSec", [])
    # Longer than udev gives one event (event_timeout, 3 min): a partition udev is still working on is not
    # missing. Finite: a missing one must still end in emergency mode, which reboots.
    assert timeouts and all(UDEV_EVENT_TIMEOUT_S < _seconds(t) <= 300 for t in timeouts), settings


@pytest.mark.parametrize("where", ["/boot/firmware", "/var/lib/amtsklingel"])
def test_a_slow_first_boots_mounts_are_not_given_up_but_a_stuck_one_is(generated, where):
    unit = generated / (where.strip("/").replace("/", "-") + ".mount")
    settings = {d.key: d.value for d in unitfile.read(unit) if d.section == "Mount"}
    assert 90 < _seconds(settings["TimeoutSec"]) <= 300, settings  # systemd's default is 90 s


def test_the_whole_boot_has_no_ordering_cycle(image_root, generated):
    """systemd breaks an ordering cycle by dropping a job at random (a mount, the tmpfiles setup);
    the boot's transaction, built offline from every unit, drop-in and fstab entry, has none."""
    imageroot.run(imageroot.require("systemctl"), f"--root={image_root.path}", "preset-all")
    for target in ("graphical.target", "emergency.target", "rescue.target"):
        result = imageroot.run(imageroot.require("systemd-analyze"), "verify", f"--root={image_root.path}",
                               "--man=no", target, check=False)
        assert "ordering cycle" not in result.stderr and result.stderr == "", result.stderr
