"""The A/B boot script (image/config/boot/boot.cmd) run by a real U-Boot: Debian's u-boot-qemu for
qemu_arm64 as QEMU's firmware, on a small image that image/build/assemble.sh built from a stand-in
root. The slot variables are set and read back with fw_setenv/fw_printenv, the tools RAUC's uboot
backend uses on the unit (/etc/fw_env.config). The stand-in kernel cannot start, so each run ends in
the script's own reset; what counts is which slot it chose, the command line it made and what it
wrote back before starting the kernel. ``./build.sh image-test`` boots the real kernel the same way.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.imagebuild.test_disk_layout import _assemble, _fake_root, _need, _table

QEMU_UBOOT = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
ENV_SIZE = 0x4000
CONFIG = Path(__file__).resolve().parents[2] / "image/config"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    _need("mkfs.vfat", "mcopy", "mke2fs", "sfdisk", "bmaptool", "mkimage", "mkenvimage", "qemu-system-aarch64",
          "fw_printenv", "fw_setenv")
    if not QEMU_UBOOT.exists():
        pytest.fail(f"no {QEMU_UBOOT}: ./build.sh test installs u-boot-qemu")
    work = tmp_path_factory.mktemp("uboot")
    root = work / "build" / "rootfs"
    root.mkdir(parents=True)
    _fake_root(root)
    return _assemble(root, work / "amtsklingel-test.img")


class Disk:
    def __init__(self, image: Path, work: Path):
        self.path = work / "disk.img"
        shutil.copyfile(image, self.path)
        self.parts = _table(self.path)["parts"]
        self.fat = f"{self.path}@@{self.parts[0]['start'] * 512}"
        self.work = work
        self.env = work / "boot-slots.env"
        (work / "fw_env.config").write_text(f"{self.env} 0x0 {ENV_SIZE:#x}\n")

    def partuuid(self, number: int) -> str:
        out = subprocess.run(["sfdisk", "--part-uuid", str(self.path), str(number)], capture_output=True, text=True,
                             check=True).stdout.strip()
        return str(uuid.UUID(out))

    def _get(self) -> None:
        subprocess.run(["mcopy", "-o", "-n", "-i", self.fat, "::/boot-slots.env", str(self.env)], check=True)

    def _put(self) -> None:
        subprocess.run(["mcopy", "-o", "-i", self.fat, str(self.env), "::/boot-slots.env"], check=True)

    def slots(self) -> dict[str, str]:
        """What Linux sees: fw_printenv of the file on the boot partition."""
        self._get()
        out = subprocess.run(["fw_printenv", "-c", str(self.work / "fw_env.config")], capture_output=True, text=True,
                             check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines())

    def set_slots(self, **values: str) -> None:
        """What RAUC's uboot backend does on the unit: fw_setenv on the file."""
        self._get()
        for name, value in values.items():
            subprocess.run(["fw_setenv", "-c", str(self.work / "fw_env.config"), name, value], check=True,
                           capture_output=True)
        self._put()

    def damage_slots(self) -> None:
        self._get()
        data = bytearray(self.env.read_bytes())
        data[10] ^= 0xFF
        self.env.write_bytes(bytes(data))
        self._put()

    def boot(self) -> str:
        """U-Boot as QEMU's firmware, until the script resets the board (-no-reboot ends QEMU)."""
        console = self.work / "console.log"
        done = subprocess.run(
            ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "512", "-nographic", "-monitor", "none",
             "-no-reboot", "-nic", "none", "-bios", str(QEMU_UBOOT),
             "-drive", f"file={self.path},format=raw,if=virtio", "-serial", f"file:{console}"],
            capture_output=True, text=True, timeout=180)
        text = console.read_text(errors="replace")
        assert done.returncode == 0, done.stderr + text
        return text


@pytest.fixture
def disk(built, tmp_path) -> Disk:
    return Disk(built, tmp_path)


def _chosen(console: str) -> tuple[str, str]:
    """(slot, command line) as the script printed them before loading the kernel."""
    assert "Amtsklingel boot script on virtio 0" in console, console[-3000:]
    found = re.search(r"Amtsklingel: booting slot ([AB]) .*?\n.*?Amtsklingel: command line: ([^\r\n]*)", console, re.S)
    assert found, console[-3000:]
    return found.group(1), found.group(2)


def test_a_new_image_boots_slot_a_and_counts_the_try_before_the_kernel_starts(disk):
    assert disk.slots() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}
    console = disk.boot()
    slot, cmdline = _chosen(console)
    assert slot == "A"
    bootargs = (CONFIG.parent / "build/assemble.sh").read_text()
    image_args = re.search(r'^BOOTARGS="([^"]*)"', bootargs, re.M).group(1)
    assert cmdline == f"root=PARTUUID={disk.partuuid(2)} rauc.slot=A {image_args}"
    # The stand-in kernel is refused; the try stays used up.
    assert "could not be started" in console
    assert disk.slots() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"}


def test_an_installed_update_boots_slot_b_on_trial(disk):
    """rauc install: the new slot first in BOOT_ORDER with 3 tries."""
    disk.set_slots(BOOT_ORDER="B A", BOOT_B_LEFT="3")
    slot, cmdline = _chosen(disk.boot())
    assert slot == "B" and cmdline.startswith(f"root=PARTUUID={disk.partuuid(3)} rauc.slot=B ")
    assert disk.slots() == {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "2"}


def test_a_slot_marked_bad_or_out_of_tries_falls_back_to_the_other(disk):
    """rauc status mark-bad booted, or three boots of B that never reached mark-good."""
    disk.set_slots(BOOT_ORDER="B A", BOOT_B_LEFT="0", BOOT_A_LEFT="3")
    slot, cmdline = _chosen(disk.boot())
    assert slot == "A" and f"root=PARTUUID={disk.partuuid(2)} rauc.slot=A " in cmdline
    assert disk.slots() == {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "0"}


def test_with_no_tries_left_anywhere_both_are_reset_and_the_first_boots(disk):
    disk.set_slots(BOOT_ORDER="B A", BOOT_B_LEFT="0", BOOT_A_LEFT="0")
    console = disk.boot()
    assert "no slot has tries left" in console
    assert _chosen(console)[0] == "B"
    assert disk.slots() == {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "2"}


def test_a_damaged_slot_file_starts_again_like_a_new_image(disk):
    disk.damage_slots()
    console = disk.boot()
    assert _chosen(console)[0] == "A"
    assert disk.slots() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"}


def test_the_pis_u_boot_starts_the_script_without_a_countdown(built, tmp_path):
    """uboot.env on the boot partition is U-Boot's own environment on the Pi: its built-in values
    from u-boot.bin, with bootdelay=-2 (no prompt for a USB keyboard to reach). The boot test runs
    the real one under QEMU's raspi3b (pi-u-boot-starts-slot-a)."""
    disk = Disk(built, tmp_path)
    subprocess.run(["mcopy", "-n", "-i", disk.fat, "::/uboot.env", str(tmp_path / "uboot.env")], check=True)
    (tmp_path / "u-boot.config").write_text(f"{tmp_path / 'uboot.env'} 0x0 {ENV_SIZE:#x}\n")
    out = subprocess.run(["fw_printenv", "-c", str(tmp_path / "u-boot.config")], capture_output=True, text=True,
                         check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env == {"bootcmd": "bootflow scan", "bootdelay": "-2", "stdin": "serial,usbkbd",
                   "stdout": "serial,vidconsole", "scriptaddr": "0x02400000", "ramdisk_addr_r": "0x02700000",
                   "kernel_addr_r": "0x00080000"}


def test_a_binary_without_a_built_in_environment_stops_the_build(tmp_path):
    (tmp_path / "u-boot.bin").write_bytes(b"\x00not u-boot\x00\x00")
    done = subprocess.run([str(CONFIG.parent / "build/uboot-env.py"), str(tmp_path / "u-boot.bin"), "bootdelay=-2"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "no built-in environment" in done.stderr
