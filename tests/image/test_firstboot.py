"""Provisioning (image/config/firstboot, image/config/same-disk), run for real: in a private
mount namespace where /boot/firmware and /var/lib/amtsklingel are empty tmpfs mounts, and
on loop devices with GPT partitions."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.image import imageroot
from tests.image.imageroot import REPO

FIRSTBOOT = REPO / "image/config/firstboot"
SAME_DISK = REPO / "image/config/same-disk"
TOKEN = "k7.Yt1Hqv0yJm3N4xW8bZpL2cR5sD9fG6hK"

# Inside the namespace: empty boot and data partitions, the image's users, our tmpfiles.d;
# then the staged boot files are "put on the card", firstboot runs, the appliance reads its
# settings, and both partitions are copied out for inspection.
DRIVER = r"""
set -eu
stage=$1 out=$2 root=$3 python=$4
mount -t tmpfs tmpfs /boot && mkdir /boot/firmware
mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/amtsklingel
mount -t tmpfs tmpfs /etc/tmpfiles.d && cp "$root/usr/lib/tmpfiles.d/amtsklingel.conf" /etc/tmpfiles.d/
mount --bind "$root/etc/passwd" /etc/passwd && mount --bind "$root/etc/group" /etc/group
cp -a "$stage/data/." /var/lib/amtsklingel/
cp -a "$stage/boot/." /boot/firmware/
# Under the kernel's memory-deny-write-execute (Linux 6.3+), as the unit's MemoryDenyWriteExecute=yes.
"$python" -m tests.image.mdwe "$FIRSTBOOT"
if [ -e /var/lib/amtsklingel/appliance.toml ]; then
    "$python" -c 'import os, pathlib; from appliance.config import ApplianceConfig
c = ApplianceConfig.load(pathlib.Path("/var/lib/amtsklingel/appliance.toml"))
print("token ok" if c.token == os.environ["TOKEN"] else "token wrong")' 2>&1 || true
fi
cp -a /boot/firmware "$out/boot" && cp -a /var/lib/amtsklingel "$out/data"
"""
# The image's built-in settings: from ./build.sh image --central URL, and without --central.
BUILT_IN_WITH_CENTRAL = 'central_url = "https://buergerbuero.musterdorf.de"\n\n[hardware]\nbackend = "pi"\n'
BUILT_IN_WITHOUT_CENTRAL = '[hardware]\nbackend = "pi"\n'
APPLIANCE_TOML = 'central_url = "https://buergerbuero.musterdorf.de"\r\ntoken_file = "/var/lib/amtsklingel/kiosk-token"\r\n\r\n[hardware]\r\nbackend = "fake"\r\n'


@pytest.fixture
def provision(image_root, tmp_path):
    """Stage files on the boot (and data) partition, run firstboot; returns (output dir, log)."""
    imageroot.require("ssh-keygen")
    stage = tmp_path / "stage"
    (stage / "boot").mkdir(parents=True)
    (stage / "data").mkdir()

    def run(boot: dict[str, bytes], data: dict[str, bytes] | None = None, *,
            built_in: str = BUILT_IN_WITH_CENTRAL) -> tuple[Path, str]:
        """``built_in``: the image's /usr/share/amtsklingel/appliance.toml."""
        (stage / "built-in.toml").write_text(built_in)
        for directory, files in (("boot", boot), ("data", data or {})):
            for name, content in files.items():
                (stage / directory / name).parent.mkdir(parents=True, exist_ok=True)
                (stage / directory / name).write_bytes(content)
        out = Path(tempfile.mkdtemp(dir=tmp_path, prefix="out-"))
        env = dict(os.environ, FIRSTBOOT=str(FIRSTBOOT), TOKEN=TOKEN, PYTHONPATH=str(REPO),
                   AMTSKLINGEL_BUILT_IN_SETTINGS=str(stage / "built-in.toml"),
                   PATH=os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin")
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", DRIVER, "driver",
                                 str(stage), str(out), str(image_root.path), sys.executable],
                                capture_output=True, text=True, env=env, cwd=REPO)
        assert result.returncode == 0, result.stdout + result.stderr
        return out, result.stdout + result.stderr
    return run


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_enrolment_files_move_to_the_data_partition(provision):
    token_from_notepad = b"\xef\xbb\xbf" + TOKEN.encode() + b"  \r\n\r\n"
    out, log = provision({"kiosk-token": token_from_notepad, "appliance.toml": APPLIANCE_TOML.encode(),
                          "authorized_keys": b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExam it@town\r\n"})
    assert sorted(p.name for p in (out / "boot").iterdir()) == [], "enrolment files stay on the readable card"
    assert (out / "data/kiosk-token").read_text() == TOKEN
    assert "\r" not in (out / "data/appliance.toml").read_text()
    assert (out / "data/ssh/authorized_keys").read_text().startswith("ssh-ed25519 ")
    assert (out / "data/ssh/ssh_host_ed25519_key").stat().st_size > 0
    assert (_mode(out / "data/kiosk-token"), _mode(out / "data/ssh"), _mode(out / "data/ssh/authorized_keys")) == \
        (0o600, 0o700, 0o600)
    assert "token ok" in log, log
    assert TOKEN not in log, "the token must never reach the journal"


def test_nothing_to_do_changes_nothing(provision):
    out, log = provision({}, {"kiosk-token": TOKEN.encode(), "appliance.toml": APPLIANCE_TOML.encode()})
    assert (out / "data/kiosk-token").read_text() == TOKEN
    assert "installed" not in log and "enrols by code" not in log and "no central_url" not in log, log


def test_a_new_token_replaces_the_old_one(provision):
    new = TOKEN[::-1].replace(".", "x") + ".new"
    out, log = provision({"kiosk-token": new.encode()}, {"kiosk-token": TOKEN.encode()})
    assert (out / "data/kiosk-token").read_text() == new
    assert "new kiosk token installed" in log


def test_an_empty_kiosk_token_makes_the_unit_enrol_again(provision):
    out, log = provision({"kiosk-token": b"\r\n"}, {"kiosk-token": TOKEN.encode()})
    assert not (out / "data/kiosk-token").exists() and not (out / "boot/kiosk-token").exists()
    assert "the old token is removed" in log and "no kiosk token: the unit enrols by code" in log


def test_an_empty_authorized_keys_switches_ssh_off(provision):
    out, log = provision({"authorized_keys": b""}, {"ssh/authorized_keys": b"ssh-ed25519 AAAA old@town\n",
                                                      "ssh/ssh_host_ed25519_key": b"KEY\n"})
    assert not (out / "data/ssh/authorized_keys").exists()
    assert (out / "data/ssh/ssh_host_ed25519_key").exists()
    assert "SSH is off" in log


STATIC_ADDRESS = b"""[Match]\r\nType=ether\r\n\r\n[Network]\r\nAddress=10.20.30.40/24\r\nGateway=10.20.30.1\r\nDNS=10.20.30.2\r\n"""


def test_a_fixed_address_is_installed_for_systemd_networkd(provision):
    out, log = provision({"wired.network": STATIC_ADDRESS})
    installed = out / "data/network/20-amtsklingel-wired.network"
    assert installed.read_text() == STATIC_ADDRESS.decode().replace("\r\n", "\n")
    # systemd-networkd reads it as its own user: the file and the way to it must allow that.
    assert _mode(installed) == 0o644 and _mode(out / "data/network") == 0o755 and _mode(out / "data") & 0o001
    assert not (out / "boot/wired.network").exists()
    assert "fixed network settings installed" in log


def test_an_empty_wired_network_goes_back_to_dhcp(provision):
    out, log = provision({"wired.network": b""}, {"network/20-amtsklingel-wired.network": STATIC_ADDRESS})
    assert not (out / "data/network/20-amtsklingel-wired.network").exists()
    assert "DHCP again" in log


def test_a_unit_without_a_token_enrols_by_code(provision):
    """Nothing on the boot partition, central built into the image: the normal case now."""
    out, log = provision({})
    assert "no kiosk token: the unit enrols by code" in log
    assert "no central_url" not in log and "missing" not in log, log
    # An empty appliance.toml (root's), so that the appliance cannot put its own settings there.
    assert (out / "data/appliance.toml").read_bytes() == b"" and _mode(out / "data/appliance.toml") == 0o640
    assert not (out / "data/kiosk-token").exists()


def test_central_from_the_boot_partition_when_the_image_has_none(provision):
    out, log = provision({}, built_in=BUILT_IN_WITHOUT_CENTRAL)
    assert "no central_url: neither this image" in log and "put appliance.toml on the boot partition" in log
    out, log = provision({"appliance.toml": APPLIANCE_TOML.encode()}, built_in=BUILT_IN_WITHOUT_CENTRAL)
    assert "no central_url" not in log and "new settings installed" in log


# -- same-disk --------------------------------------------------------------------------

@pytest.fixture
def disks(tmp_path):
    """Two GPT disks on loop devices: disk A with partitions 1 and 2, disk B with partition 1,
    each partition formatted and mounted in a private mount namespace's view."""
    imageroot.require_root()
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no loop devices here (a container without /dev/loop-control)")
    for tool in ("losetup", "partx", "sfdisk", "mkfs.ext4"):
        imageroot.require(tool)
    loops = []
    try:
        for name, parts in (("a", 2), ("b", 1)):
            image = tmp_path / f"{name}.img"
            image.write_bytes(b"")
            os.truncate(image, 16 << 20)
            layout = "label: gpt\n" + "size=4M, type=L\n" * parts
            subprocess.run(["sfdisk", "-q", str(image)], input=layout, text=True, check=True)
            loop = imageroot.run("losetup", "--find", "--show", str(image)).stdout.strip()
            loops.append(loop)
            imageroot.run("partx", "--add", loop)
            for n in range(1, parts + 1):
                imageroot.run("mkfs.ext4", "-q", f"{loop}p{n}")
        yield {"a1": f"{loops[0]}p1", "a2": f"{loops[0]}p2", "b1": f"{loops[1]}p1"}
    finally:
        for loop in loops:
            subprocess.run(["partx", "--delete", loop], capture_output=True)
            subprocess.run(["losetup", "--detach", loop], capture_output=True)


def _same_disk(tmp_path, disks, *parts: str) -> subprocess.CompletedProcess:
    mounts = [tmp_path / f"mnt-{p}" for p in parts]
    script = "set -e\n"
    for part, mnt in zip(parts, mounts):
        mnt.mkdir(exist_ok=True)
        script += f"mount {disks[part]} {mnt}\n" if part in disks else f"mount -t tmpfs tmpfs {mnt}\n"
    script += f"exec {SAME_DISK} " + " ".join(map(str, mounts)) + "\n"
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True)


def test_partitions_of_one_disk_are_accepted(tmp_path, disks):
    result = _same_disk(tmp_path, disks, "a1", "a2")
    assert result.returncode == 0, result.stderr


def test_a_partition_on_another_disk_is_refused(tmp_path, disks):
    result = _same_disk(tmp_path, disks, "a1", "a2", "b1")
    assert result.returncode == 1
    assert "refusing" in result.stderr and os.path.basename(disks["b1"]).removesuffix("p1") in result.stderr


def test_no_disk_to_compare_with_is_a_warning(tmp_path, disks):
    result = _same_disk(tmp_path, disks, "tmpfs", "a1")
    assert result.returncode == 0 and "not comparing" in result.stderr
