"""What the running image says about itself: software version, root slot, why this boot happened.

Read once at start from files the image writes (image/build/customize.sh, image/README.md); each
is optional, so a development checkout reports the package version, no slot and ``unknown``.
``root`` moves every path, for tests.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from appliance.update import marker as markers

log = logging.getLogger(__name__)

VERSION_FILE = "etc/amtsklingel/version"  # one line, e.g. written by a later update agent: wins
IMAGE_RELEASE = "usr/lib/amtsklingel/image-release"  # IMAGE_VERSION=…, IMAGE_COMMIT=… (the image build)
CMDLINE = "proc/cmdline"
PARTLABELS = "dev/disk/by-partlabel"
PARTUUIDS = "dev/disk/by-partuuid"
SLOT_LABELS = {"rootfs-a": "A", "rootfs-b": "B"}  # image/config/fstab, image/README.md "Layout"
BOOT_ID = "proc/sys/kernel/random/boot_id"
WATCHDOG_STATUS = "sys/class/watchdog/watchdog0/bootstatus"
WDIOF_CARDRESET = 0x20  # linux/watchdog.h: the last reboot was caused by the watchdog
_VERSION_CHARS = re.compile(r"[^A-Za-z0-9._+~-]")  # protocol.fleet.Version
COMMIT_DIGITS = 12

BootReason = Literal["power_on", "reboot", "watchdog", "update", "rollback", "unknown"]


@dataclass(frozen=True)
class ImageInfo:
    version: str
    slot: Literal["A", "B"] | None
    boot_reason: BootReason

    @classmethod
    def read(cls, root: Path | str = "/", data_dir: Path | None = None) -> ImageInfo:
        """``data_dir``: where the update agent keeps its marker (appliance/update/marker.py)."""
        root = Path(root)
        return cls(software_version(root), root_slot(root), boot_reason(root, data_dir))


def _read(root: Path, name: str) -> str | None:
    try:
        return (root / name).read_text(errors="replace").strip("\x00 \n\t")
    except OSError:
        return None


def package_version() -> str:
    try:
        return metadata.version("amtsklingel")
    except metadata.PackageNotFoundError:  # the image copies the code without the package metadata
        return "unknown"


def software_version(root: Path) -> str:
    """``/etc/amtsklingel/version``, else the image's version and commit (``0.1.0+1a2b3c4d5e6f``),
    else the installed package's version."""
    version = _read(root, VERSION_FILE)
    if not version and (release := _read(root, IMAGE_RELEASE)):
        fields = dict(line.split("=", 1) for line in release.splitlines() if "=" in line)
        version = fields.get("IMAGE_VERSION", "").strip("'\" ")
        commit = fields.get("IMAGE_COMMIT", "").strip("'\" ")
        if version and commit:
            version = f"{version}+{commit[:COMMIT_DIGITS]}"
    version = _VERSION_CHARS.sub("_", (version or package_version()).splitlines()[0])[:64]
    return version or "unknown"


def root_slot(root: Path) -> Literal["A", "B"] | None:
    """The slot whose partition the kernel mounted as root (``root=PARTUUID=…`` on its command line)."""
    cmdline = _read(root, CMDLINE) or ""
    found = re.search(r"(?:^|\s)root=PARTUUID=(\S+)", cmdline)
    if not found:
        return None
    try:
        mounted = (root / PARTUUIDS / found.group(1).lower()).resolve(strict=True)
        for label, slot in SLOT_LABELS.items():
            if (root / PARTLABELS / label).resolve(strict=True) == mounted:
                return slot  # type: ignore[return-value]
    except OSError:
        pass
    return None


def boot_reason(root: Path, data_dir: Path | None = None) -> BootReason:
    """What is known for certain: the trial boot of an update or the fall-back from one (the update
    agent's marker), or a reset by the watchdog; else unknown.

    Power-on and an ordinary reboot look alike from here (the journal is volatile), so neither is
    guessed.
    """
    found = markers.load(data_dir / markers.MARKER_FILE) if data_dir is not None else None
    if found is not None:
        slot = root_slot(root)
        if found.step in ("rebooting", "trial") and slot is not None:  # not settled yet in this boot
            if slot == found.target_slot:
                return "update"
            if slot == found.from_slot:
                return "rollback"
        elif found.step in ("running", "rolled_back") and found.boot_id == _read(root, BOOT_ID):  # settled in this boot
            return "update" if found.step == "running" else "rollback"
    status = _read(root, WATCHDOG_STATUS)
    try:
        if status and int(status, 0) & WDIOF_CARDRESET:
            return "watchdog"
    except ValueError:
        log.debug("unreadable watchdog boot status %r", status)
    return "unknown"
