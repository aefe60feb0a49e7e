"""The disk image's layout, for real: image/build/assemble.sh builds a small image from a stand-in
root file system, then its first boot on a card bigger than the image is played on a loop
device with the image's own programs: grow-disk moves the backup GPT to the card's end and
systemd-repart creates and formats the data partition from image/config/repart.d.

The host's systemd-repart stands in for the image's (the QEMU boot test, ``./build.sh
image-test``, runs the image's own at a real first boot).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "image" / "build"
REPART_D = REPO / "image" / "config" / "repart.d"
GROW_DISK = REPO / "image" / "config" / "grow-disk"
MIB = 1 << 20
SIZES = {"AMTSKLINGEL_BOOT_MB": "64", "AMTSKLINGEL_ROOT_MB": "64", "AMTSKLINGEL_DATA_MB": "64"}
DATA_TYPE = next(line.split("=", 1)[1].strip() for line in (REPART_D / "50-amtsklingel-data.conf").read_text().splitlines()
                 if line.startswith("Type="))


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: ./build.sh test installs them")


def _fake_root(root: Path, *, reverse: bool = False) -> None:
    """What assemble.sh takes from a root file system: Pi firmware, device trees, U-Boot, and the
    links to the slot's kernel and initrd that customize.sh makes."""
    kver = "6.12.0-test-arm64"
    files = {f"boot/vmlinuz-{kver}": b"kernel", f"boot/initrd.img-{kver}": b"initrd",
             "usr/lib/raspi-firmware/start4.elf": b"firmware", "usr/lib/raspi-firmware/fixup4.dat": b"fixup",
             "usr/lib/raspi-firmware/overlays/vc4-kms-v3d.dtbo": b"overlay",
             "usr/lib/raspi-firmware/overlays/disable-bt.dtbo": b"overlay", "usr/lib/raspi-firmware/overlays/README": b"",
             f"usr/lib/linux-image-{kver}/broadcom/bcm2711-rpi-4-b.dtb": b"dtb",
             # code, then its built-in environment (NAME=VALUE entries, two NULs at the end)
             "usr/lib/u-boot/rpi_arm64/u-boot.bin": b"\x14\x00\x00\x94u-boot\x00\xff\x00" + b"\x00".join(
                 [b"bootcmd=bootflow scan", b"bootdelay=2", b"stdin=serial,usbkbd", b"stdout=serial,vidconsole",
                  b"scriptaddr=0x02400000", b"ramdisk_addr_r=0x02700000", b"kernel_addr_r=0x00080000"]) + b"\x00\x00\x01",
             "usr/lib/os-release": b"ID=debian\n", "etc/hostname": b"amtsklingel\n"}
    for name, content in sorted(files.items(), reverse=reverse):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "boot/firmware").mkdir()
    (root / "boot/vmlinuz").symlink_to(f"vmlinuz-{kver}")
    (root / "boot/initrd.img").symlink_to(f"initrd.img-{kver}")
    # customize.sh clamps modification times to SOURCE_DATE_EPOCH before assembly.
    for path in [root, *root.rglob("*")]:
        os.utime(path, (1789990000, 1789990000), follow_symlinks=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    _need("mkfs.vfat", "mcopy", "mke2fs", "sfdisk", "bmaptool", "mkimage", "mkenvimage")
    work = tmp_path_factory.mktemp("assemble")
    root = work / "build" / "rootfs"
    root.mkdir(parents=True)
    _fake_root(root)
    return _assemble(root, work / "amtsklingel-test.img")


def _assemble(root: Path, img: Path) -> Path:
    env = {**os.environ, **SIZES, "SOURCE_DATE_EPOCH": "1790000000", "AMTSKLINGEL_IMAGE_VERSION": "0.0.0-test",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"}
    done = subprocess.run([str(BUILD / "assemble.sh"), str(root), str(img)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return img


def _table(device: Path | str) -> dict:
    dump = subprocess.run(["sfdisk", "--dump", str(device)], capture_output=True, text=True, check=True).stdout
    header = dict(re.findall(r"^([a-z-]+): (.*)$", dump, re.M))
    parts = []
    for line in dump.splitlines():
        if " : start=" in line:
            fields = dict(re.findall(r'(\w+)=\s*("[^"]*"|[^,]+)', line.split(" : ", 1)[1]))
            parts.append({"start": int(fields["start"]), "size": int(fields["size"]), "type": fields["type"].upper(),
                          "name": fields.get("name", "").strip('"')})
    return {"last_lba": int(header["last-lba"]), "parts": parts}


def _verify(device: Path | str) -> str:
    return subprocess.run(["sfdisk", "--verify", str(device)], capture_output=True, text=True).stdout


def test_the_image_has_boot_and_two_root_slots_and_room_for_data(image):
    table = _table(image)
    assert [p["name"] for p in table["parts"]] == ["boot", "rootfs-a", "rootfs-b"]
    end_of_last = max(p["start"] + p["size"] for p in table["parts"])
    free_mib = (table["last_lba"] + 1 - end_of_last) * 512 / MIB
    assert free_mib >= 63.9, f"only {free_mib:.1f} MiB left for the data partition"
    assert "No errors detected" in _verify(image)
    assert image.with_suffix(".img.bmap").exists() and image.with_suffix(".img.sha256").exists()


@pytest.fixture
def card(image, tmp_path):
    """A copy of the image on a loop device, optionally bigger than the image (a real card)."""
    if os.geteuid() != 0:
        pytest.fail("loop devices need root: run the tests as ./build.sh test does")
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no loop devices here (a container without /dev/loop-control)")
    _need("losetup", "systemd-repart", "blkid", "blockdev")
    loops = []

    def insert(extra_mib: int) -> str:
        copy = tmp_path / f"card{len(loops)}.img"
        shutil.copyfile(image, copy)
        os.truncate(copy, copy.stat().st_size + extra_mib * MIB)
        loop = subprocess.run(["losetup", "--find", "--show", "--partscan", str(copy)], capture_output=True,
                              text=True, check=True).stdout.strip()
        loops.append(loop)
        return loop
    yield insert
    for loop in loops:
        subprocess.run(["losetup", "-d", loop], check=False)


def _first_boot(loop: str) -> str:
    """What runs before anything mounts the data partition: grow-disk, then systemd-repart."""
    grow = subprocess.run(["sh", str(GROW_DISK), loop], capture_output=True, text=True)
    assert grow.returncode == 0, grow.stdout + grow.stderr
    repart = subprocess.run(["systemd-repart", "--dry-run=no", "--no-pager", f"--definitions={REPART_D}", loop],
                            capture_output=True, text=True)
    assert repart.returncode == 0, repart.stdout + repart.stderr
    return grow.stdout


def _data(loop: str) -> dict:
    parts = _table(loop)["parts"]
    assert len(parts) == 4, parts
    return parts[3]


def _fs(loop: str, start: int) -> dict:
    """blkid of the file system at the data partition's offset (no partition device needed)."""
    out = subprocess.run(["blkid", "-p", "-O", str(start * 512), "-o", "export", loop], capture_output=True,
                         text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_first_boot_on_a_bigger_card_makes_the_data_partition(card):
    loop = card(2048)
    before = _table(loop)["parts"]
    said = _first_boot(loop)
    assert "moving the backup GPT" in said
    after = _table(loop)
    assert after["parts"][:3] == before, "boot and root slots must stay exactly as flashed"
    data = _data(loop)
    assert (data["name"], data["type"]) == ("data", DATA_TYPE.upper())
    assert data["start"] >= before[2]["start"] + before[2]["size"]
    # Capped at 1 GiB (image/config/repart.d); the rest of the card stays free for later.
    assert data["size"] * 512 == 1024 * MIB
    fs = _fs(loop, data["start"])
    assert (fs.get("TYPE"), fs.get("LABEL")) == ("ext4", "data"), fs
    disk_sectors = int(subprocess.run(["blockdev", "--getsz", loop], capture_output=True, text=True,
                                      check=True).stdout)
    assert disk_sectors - after["last_lba"] <= 34, "the backup GPT is not at the card's end"
    assert "No errors detected" in _verify(loop)


def test_first_boot_on_a_card_of_the_image_size(card):
    loop = card(0)
    said = _first_boot(loop)
    assert said == "", "nothing to move when the backup GPT is already at the end"
    data = _data(loop)
    assert 64 * MIB <= data["size"] * 512 < 65 * MIB
    assert _fs(loop, data["start"]).get("TYPE") == "ext4"


def test_every_later_boot_keeps_the_data(card):
    loop = card(256)
    _first_boot(loop)
    data = _data(loop)
    uuid = _fs(loop, data["start"])["UUID"]
    assert _first_boot(loop) == ""
    assert _data(loop) == data and _fs(loop, data["start"])["UUID"] == uuid, "the data partition was remade"


def test_assembling_again_gives_the_same_bytes(image, tmp_path):
    """Nothing of the moment of the build (times, random IDs, directory order) gets into the image:
    the same root file system assembled again, later and from a copy made in another order,
    is bit-for-bit the same image."""
    root = tmp_path / "build" / "rootfs"
    root.mkdir(parents=True)
    _fake_root(root, reverse=True)
    again = _assemble(root, tmp_path / "amtsklingel-test.img")
    assert again.read_bytes() == image.read_bytes()


def _debugfs(loop: str, part: dict, *request: str) -> subprocess.CompletedProcess:
    """debugfs on the data partition (a loop device over the card at the partition's offset)."""
    sub = subprocess.run(["losetup", "--find", "--show", "--offset", str(part["start"] * 512), "--sizelimit",
                          str(part["size"] * 512), loop], capture_output=True, text=True, check=True).stdout.strip()
    try:
        return subprocess.run(["debugfs", *request, sub], capture_output=True, text=True)
    finally:
        subprocess.run(["losetup", "-d", sub], check=False)


def test_factory_reset_gives_a_new_empty_data_partition(card, tmp_path):
    """systemd.factory_reset=1 (here: systemd-repart --factory-reset=yes) forgets the enrolment:
    the data partition is made anew and empty; boot and root slots stay as flashed."""
    _need("debugfs")
    loop = card(256)
    _first_boot(loop)
    before = _table(loop)["parts"]
    token = tmp_path / "kiosk-token"
    token.write_text("k7.secret\n")
    _debugfs(loop, before[3], "-w", "-R", f"write {token} kiosk-token")
    assert "Type: regular" in _debugfs(loop, before[3], "-R", "stat kiosk-token").stdout
    reset = subprocess.run(["systemd-repart", "--dry-run=no", "--no-pager", "--factory-reset=yes",
                            f"--definitions={REPART_D}", loop], capture_output=True, text=True)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    after = _table(loop)["parts"]
    assert after[:3] == before[:3]
    assert (after[3]["name"], after[3]["type"]) == ("data", DATA_TYPE.upper())
    assert _fs(loop, after[3]["start"]).get("TYPE") == "ext4"
    gone = _debugfs(loop, after[3], "-R", "stat kiosk-token")
    assert "Type: regular" not in gone.stdout and "not found" in gone.stderr, "the token survived the reset"
