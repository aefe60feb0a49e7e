"""The image's files as the build installs them: MANIFEST parsing and a scratch root.

``build_root()`` assembles a directory that looks, to systemd's offline tools
(``systemd-analyze --root``, ``systemctl --root``, ``systemd-sysusers --root``), like
the image's root file system: this machine's own systemd units and presets, every
MANIFEST entry installed at its target, and a stub for each program the image's
packages provide (cage, chromium, sshd, ...). Stubs exist only because
``systemd-analyze verify`` insists that every ExecStart= program is executable; the
list of them, ``IMAGE_PROVIDES``, doubles as the build's list of what the units need.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "image" / "config" / "MANIFEST"
OWNED_DIRS = ("systemd", "udev", "image/config")
# The boot partition's sources: image/build/assemble.sh compiles them onto the boot partition, not into
# the root file system (tests/imagebuild/test_boot_script.py runs them in U-Boot).
BOOT_PARTITION_DIR = "image/config/boot"
UNITS = ("amtsklingel-appliance.service", "amtsklingel-kiosk.service", "amtsklingel-firstboot.service",
         "amtsklingel-grow-disk.service", "amtsklingel-boot-count.service", "amtsklingel-boot-healthy.service")

# Programs the units run that come from Debian packages (or, for the venv, from the image
# build), not from this repository; each gets a stub in the scratch root.
IMAGE_PROVIDES = {
    "/usr/lib/amtsklingel/venv/bin/python": "the image build: a venv with the appliance installed",
    "/usr/bin/cage": "cage",
    "/usr/bin/chromium": "chromium",
    "/usr/sbin/nft": "nftables",
    "/usr/sbin/sshd": "openssh-server",
    "/usr/bin/ssh-keygen": "openssh-client",
    "/usr/bin/systemd-tmpfiles": "systemd",
    "/usr/lib/systemd/systemd-makefs": "systemd",
    "/usr/lib/systemd/systemd-fsck": "systemd",
    "/usr/lib/systemd/systemd-growfs": "systemd",
    "/usr/bin/rauc": "rauc",
}

# Stand-ins for units of packages this test machine need not have installed.
STUB_UNITS = {
    # Debian's openssh-server ssh.service, reduced to what the drop-in relies on.
    "ssh.service": """[Unit]
Description=OpenBSD Secure Shell server (stand-in for the test)
After=network.target

[Service]
ExecStartPre=/usr/sbin/sshd -t
ExecStart=/usr/sbin/sshd -D
Restart=on-failure

[Install]
WantedBy=multi-user.target
""",
    # Debian's rauc-service rauc.service (D-Bus activated), reduced to what the drop-in relies on.
    "rauc.service": """[Unit]
Description=RAUC update service (stand-in for the test)

[Service]
Type=dbus
BusName=de.pengutronix.rauc
ExecStart=/usr/bin/rauc --mount=/run/rauc service
""",
    "nftables.service": """[Unit]
Description=nftables (stand-in for the test)
DefaultDependencies=no
Before=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/nftables.conf

[Install]
WantedBy=sysinit.target
""",
}


@dataclass(frozen=True)
class Entry:
    kind: str     # file | link | dir
    source: str   # repository path (file), link target (link) or "-" (dir)
    target: str   # absolute path in the image
    mode: str     # octal, or "-" for links
    owner: str    # user:group
    line: int


class ManifestError(ValueError):
    pass


def manifest() -> list[Entry]:
    entries = []
    for number, raw in enumerate(MANIFEST.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 5:
            raise ManifestError(f"MANIFEST:{number}: expected 5 fields, got {len(fields)}: {raw!r}")
        entries.append(Entry(*fields, line=number))
    return entries


def owned_files() -> set[str]:
    """Every file of ours that belongs in the image (repository-relative)."""
    found = set()
    for top in OWNED_DIRS:
        for path in (REPO / top).rglob("*"):
            name = path.relative_to(REPO).as_posix()
            if path.is_file() and path != MANIFEST and not name.startswith(BOOT_PARTITION_DIR + "/"):
                found.add(name)
    return found


def install(entries: list[Entry], root: Path) -> None:
    """Install the entries into ``root`` as the build would (ownership aside)."""
    for e in entries:
        target = root / e.target.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if e.kind == "file":
            shutil.copyfile(REPO / e.source, target)
            target.chmod(int(e.mode, 8))
        elif e.kind == "link":
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(e.source)
        elif e.kind == "dir":
            target.mkdir(exist_ok=True)
            target.chmod(int(e.mode, 8))
        else:
            raise ManifestError(f"MANIFEST:{e.line}: unknown kind {e.kind!r}")


EXEC_LINE = re.compile(r"^Exec\w+=[-+!@:]*(/\S+)", re.M)


def exec_paths(unit_text: str) -> set[str]:
    return set(EXEC_LINE.findall(unit_text))


@dataclass(frozen=True)
class ImageRoot:
    path: Path
    stubs: frozenset[str]  # programs that exist only as stubs (see IMAGE_PROVIDES)


def build_root(root: Path) -> ImageRoot:
    """Assemble the scratch root."""
    (root / "usr/lib").mkdir(parents=True)
    for link in ("lib", "bin", "sbin"):  # merged /usr, as on trixie
        (root / link).symlink_to(f"usr/{link}")
    (root / "usr/bin").mkdir()
    (root / "usr/sbin").mkdir()
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree("/usr/lib/systemd/system-preset", root / "usr/lib/systemd/system-preset", symlinks=True)
    # The distribution's users and groups (video, audio, render, ...) next to ours.
    shutil.copytree("/usr/lib/sysusers.d", root / "usr/lib/sysusers.d", symlinks=True)
    for name, text in STUB_UNITS.items():
        path = root / "usr/lib/systemd/system" / name
        if not path.exists():
            path.write_text(text)
    install(manifest(), root)

    wanted: set[str] = set()
    for unit_dir in ("usr/lib/systemd/system", "etc/systemd/system"):
        for path in (root / unit_dir).rglob("*"):
            if path.is_file() and not path.is_symlink() and path.name.startswith(("amtsklingel", "ssh", "nftables", "rauc")):
                wanted |= exec_paths(path.read_text())
    return ImageRoot(root, frozenset(stub_programs(root, wanted)))


def stub_programs(root: Path, programs: set[str]) -> set[str]:
    """Create a stub for each program missing from ``root``; returns their /usr paths."""
    stubs = set()
    for program in sorted(programs):
        usr = "/usr" + program if program.startswith(("/lib/", "/bin/", "/sbin/")) else program
        path = root / usr.lstrip("/")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\nexit 0\n")
            path.chmod(0o755)
            stubs.add(usr)
    return stubs


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kwargs)


def require(program: str) -> str:
    """The path of a tool the image tests need; fail (not skip) with how to get it."""
    found = shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        pytest.fail(f"{program} is missing: ./build.sh test installs the Debian packages the image tests use")
    return found


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the image tests mount file systems and create network namespaces: run them as root "
                    "(./build.sh test, or tools/netns-run .venv/bin/python -m pytest tests/image)")
