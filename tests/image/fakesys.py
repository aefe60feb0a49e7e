"""Run udev's real rule engine (``udevadm test``) on made-up devices.

The way systemd tests udev itself: inside a private mount namespace, an empty tmpfs is
mounted over /sys, /dev and /run, device directories with ``uevent`` and attribute files
are written into it, and ``udevadm test`` processes an event for one of them with every
rules file of this machine (Debian's) plus ours. udevadm then sets the device node's owner
and mode and writes ATTR{} assignments, into the fake tree, where they can be read back.

    unshare --mount --propagation private python -m tests.image.fakesys SPEC.json

SPEC: {"rules": [rule files to install], "passwd": file, "group": file,
       "devices": [{"path": "devices/...", "subsystem": "sound", "uevent": {..}, "attrs": {..},
                    "binary_attrs": {name: hex}, "dirs": [..], "node": "video0"}],
       "before": ["devices/..." events processed first, e.g. a partition's disk],
       "event": "devices/...", "action": "add", "read": ["devices/.../id"]}
Prints JSON: {"properties": {...}, "node": {"mode": .., "gid": ..} or null, "read": {...}, "log": "..."}
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

SYS, DEV = Path("/sys"), Path("/dev")


def mount_tmpfs(where: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", where], check=True)


def bind(source: str, target: str) -> None:
    subprocess.run(["mount", "--bind", source, target], check=True)


def make_device(device: dict) -> None:
    path = SYS / device["path"]
    path.mkdir(parents=True)
    subsystem = SYS / "class" / device["subsystem"]
    subsystem.mkdir(parents=True, exist_ok=True)
    (path / "subsystem").symlink_to(subsystem)
    uevent = device.get("uevent", {})
    (path / "uevent").write_text("".join(f"{k}={v}\n" for k, v in uevent.items()))
    for name, value in device.get("attrs", {}).items():
        (path / name).write_text(f"{value}\n")
    for name, value in device.get("binary_attrs", {}).items():
        (path / name).write_bytes(bytes.fromhex(value))
    for child in device.get("dirs", []):
        (path / child).mkdir(parents=True)
    if "MAJOR" in uevent:
        kind = "block" if device["subsystem"] == "block" else "char"
        link = SYS / "dev" / kind / f"{uevent['MAJOR']}:{uevent['MINOR']}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        if device.get("node"):
            node = DEV / device["node"]
            node.parent.mkdir(parents=True, exist_ok=True)
            kind_bit = stat.S_IFBLK if kind == "block" else stat.S_IFCHR
            os.mknod(node, 0o600 | kind_bit, os.makedev(int(uevent["MAJOR"]), int(uevent["MINOR"])))


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    for where in ("/sys", "/dev", "/run"):
        mount_tmpfs(where)
    bind(spec["passwd"], "/etc/passwd")
    bind(spec["group"], "/etc/group")
    rules = Path("/run/udev/rules.d")
    rules.mkdir(parents=True)
    for rule in spec["rules"]:
        shutil.copy(rule, rules)
    for device in spec["devices"]:
        make_device(device)

    env = dict(os.environ, SYSTEMD_DEVICE_VERIFY_SYSFS="0", SYSTEMD_LOG_LEVEL="debug")
    for event in [*spec.get("before", []), spec["event"]]:  # earlier events leave their udev database entries
        result = subprocess.run(["udevadm", "test", f"--action={spec['action']}", str(SYS / event)],
                                capture_output=True, text=True, env=env)
    properties = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    node = None
    node_name = next((d.get("node") for d in spec["devices"] if d["path"] == spec["event"]), None)
    if node_name:
        st = os.stat(DEV / node_name)
        node = {"mode": stat.S_IMODE(st.st_mode), "gid": st.st_gid, "uid": st.st_uid}
    read = {name: (SYS / name).read_text().strip() for name in spec.get("read", [])}
    print(json.dumps({"returncode": result.returncode, "properties": properties, "node": node, "read": read,
                      "log": result.stderr}))


if __name__ == "__main__":
    main(sys.argv[1])
