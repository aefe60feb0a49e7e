"""What the image gives RAUC: slots, keyring, the boot script's variables through fw_env.config, the
data directory on the data partition (and rauc.service waiting for it), the appliance's D-Bus access.
The values are the ones docs/decisions/0006-ab-boot-with-u-boot.md and docs/updates.md rely on."""
from __future__ import annotations

import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.image import imageroot, unitfile
from tests.image.imageroot import REPO

CONFIG = REPO / "image/config"
BOOT_SCRIPT = CONFIG / "boot/boot.cmd"
ASSEMBLE = REPO / "image/build/assemble.sh"


def _system_conf() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(CONFIG / "rauc/system.conf")
    return parser


def _installed(source: str) -> str:
    return next(e.target for e in imageroot.manifest() if e.kind == "file" and e.source == source)


def test_rauc_system_conf_says_what_was_agreed():
    conf = _system_conf()
    assert dict(conf["system"]) == {"compatible": "amtsklingel-rpi-arm64", "bootloader": "uboot",
                                    "data-directory": "/var/lib/amtsklingel/rauc", "bundle-formats": "-plain"}
    assert dict(conf["keyring"]) == {"path": "/usr/share/amtsklingel/update-keyring.pem",
                                     "use-bundle-signing-time": "true"}
    assert dict(conf["slot.rootfs.0"]) == {"device": "/dev/disk/by-partlabel/rootfs-a", "type": "ext4", "bootname": "A"}
    assert dict(conf["slot.rootfs.1"]) == {"device": "/dev/disk/by-partlabel/rootfs-b", "type": "ext4", "bootname": "B"}
    assert _installed("image/config/rauc/system.conf") == "/etc/rauc/system.conf"


def test_rauc_knows_every_key():
    """RAUC reads its configuration with GKeyFile: each key it knows is a string in its binary."""
    data = Path(imageroot.require("rauc")).read_bytes()
    assert b"\0no-such-key-anywhere\0" not in data
    unknown = [key for section in _system_conf().sections() for key in _system_conf()[section]
               if f"{key}\0".encode() not in data]
    assert not unknown, f"rauc knows no {unknown}"


def test_slots_are_the_partitions_the_boot_script_boots():
    """bootname A is partition 2 named rootfs-a, B is 3 named rootfs-b, in assemble.sh and boot.cmd."""
    table = ASSEMBLE.read_text()
    script = BOOT_SCRIPT.read_text()
    for number, (section, bootname) in enumerate((("slot.rootfs.0", "A"), ("slot.rootfs.1", "B")), start=2):
        label = _system_conf()[section]["device"].rsplit("/", 1)[1]
        rows = [line for line in table.splitlines() if line.startswith("start=")]
        assert f'name="{label}"' in rows[number - 1], rows
        assert re.search(rf'setenv amtsklingel_slot {bootname}\n\s*setenv amtsklingel_part {number}\n', script)
        assert _system_conf()[section]["bootname"] == bootname


def test_fw_env_config_points_at_the_boot_scripts_file():
    line = next(raw.split() for raw in (CONFIG / "fw_env.config").read_text().splitlines()
                if raw.strip() and not raw.startswith("#"))
    path, offset, size = line
    name = Path(path).name
    assert Path(path).parent == Path("/boot/firmware") and offset == "0x0" and int(size, 16) == 0x4000
    script = BOOT_SCRIPT.read_text()
    assert f"load ${{devtype}} ${{devnum}}:1 ${{amtsklingel_env_addr}} {name}" in script
    assert f"env export -c -s {size}" in script and f"fatwrite ${{devtype}} ${{devnum}}:1 ${{amtsklingel_env_addr}} {name} {size}" in script
    assert f"mkenvimage -s {size} -o \"$B/{name}\"" in ASSEMBLE.read_text()
    assert _installed("image/config/fw_env.config") == "/etc/fw_env.config"
    # Not U-Boot's own environment file on the Pi (CONFIG_ENV_FAT_FILE), which would replace U-Boot's defaults.
    assert name != "uboot.env"


def test_rauc_waits_for_its_data_directory_on_the_data_partition():
    data_directory = _system_conf()["system"]["data-directory"]
    fstab = {fields[1]: fields[0] for fields in (line.split() for line in (CONFIG / "fstab").read_text().splitlines()
                                                 if line.strip() and not line.startswith("#"))}
    assert fstab["/var/lib/amtsklingel"] == "PARTLABEL=data" and data_directory.startswith("/var/lib/amtsklingel/")
    drop_in = unitfile.read(REPO / "systemd/rauc.service.d/amtsklingel.conf")
    assert unitfile.values(drop_in, "RequiresMountsFor", "Unit") == [f"{data_directory} /boot/firmware"]
    # The directory is made (and its mode set) by provisioning's systemd-tmpfiles run, which rauc waits for.
    assert unitfile.values(drop_in, "After", "Unit") == ["amtsklingel-firstboot.service"]
    assert re.search(rf"^d {re.escape(data_directory)}\s+0700 root root -$", (REPO / "systemd/amtsklingel.tmpfiles").read_text(), re.M)
    assert _installed("systemd/rauc.service.d/amtsklingel.conf") == "/usr/lib/systemd/system/rauc.service.d/amtsklingel.conf"


def test_the_appliance_may_talk_to_rauc_and_nobody_else_gains_anything():
    policy = ET.parse(CONFIG / "dbus-rauc.conf").getroot()
    policies = policy.findall("policy")
    assert [p.attrib for p in policies] == [{"user": "amtsklingel"}]
    assert [(rule.tag, rule.attrib) for rule in policies[0]] == [("allow", {"send_destination": "de.pengutronix.rauc"})]
    assert re.search(r"^u amtsklingel ", (REPO / "systemd/amtsklingel.sysusers").read_text(), re.M)
    assert _installed("image/config/dbus-rauc.conf").startswith("/usr/share/dbus-1/system.d/")
