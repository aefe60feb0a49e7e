"""Two root slots without a Pi: RAUC and U-Boot's boot counting mimicked in a JSON state file.

For tests and ``./build.sh demo``. It keeps what U-Boot keeps in ``uboot.env`` (``BOOT_ORDER``,
``BOOT_A_LEFT``, ``BOOT_B_LEFT``) and what RAUC keeps per slot (the version installed there), and
changes them as RAUC's U-Boot backend does: an install first takes the target's tries away, writes,
then puts it first in the order with fresh tries; mark-good tops the tries up, mark-bad takes them
away. :meth:`FakeSlots.reboot` is U-Boot's boot script: the first slot in the order with tries left,
one try fewer; none left anywhere: tries reset, the first one boots.

An install really reads the bundle from the given URL with Range requests, as RAUC's streaming
does, and takes version and compatible from the manifest in the bundle's signature (which RAUC
signs inline, so the text is in the file): a real bundle works as well as :func:`fake_bundle`.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import aiohttp

from appliance.service.files import write_atomic
from appliance.update.slots import InstallFailed, Progress, Slot, SlotBusy, SlotError, SlotStatus, Which
from protocol.updates import UpdateFault

log = logging.getLogger(__name__)

TRIES = 3  # as the image's boot script (image/config/boot)
COMPATIBLE = "amtsklingel-rpi-arm64"
CHUNK = 64 * 1024  # RAUC's streaming reads in blocks of about this size
MANIFEST_UPDATE = re.compile(rb"\[update\][^\[]*?\bversion=([A-Za-z0-9._+~-]{1,64})")
MANIFEST_COMPATIBLE = re.compile(rb"\[update\][^\[]*?\bcompatible=([^\r\n]{1,200})")


class FakeRestart:
    """A "reboot" with fake slots (the demo): U-Boot picks the next slot and the service starts again
    (``restart``: the appliance exits; the demo, like systemd, starts it again)."""

    def __init__(self, slots: FakeSlots, restart) -> None:  # noqa: ANN001 - a callable
        self.slots, self.restart = slots, restart
        self.reboots: list[str] = []

    async def reboot(self, why: str = "central asked for it") -> None:
        self.reboots.append(self.slots.reboot())
        log.warning("fake restart (%s): slot %s boots next", why, self.reboots[-1])
        self.restart()


def fake_bundle(version: str, *, compatible: str = COMPATIBLE, payload_bytes: int = 256 * 1024) -> bytes:
    """Bytes that pass for a bundle with the fake: a payload, then the manifest as RAUC signs it."""
    payload = bytes((i * 7919 + 13) % 251 for i in range(payload_bytes))
    manifest = f"[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=verity\n".encode()
    return payload + manifest


class FakeSlots:
    def __init__(self, path: Path | str, *, version: str = "0.0.0", compatible: str = COMPATIBLE) -> None:
        """``version``: what slot A runs when the state file does not exist yet (the unit as flashed)."""
        self.path, self.compatible = Path(path), compatible
        self.fail_next: tuple[UpdateFault, str] | None = None  # the next install fails like this
        # RAUC's service at work on an installation another client started: it refuses everything
        # (busy), or only a second installation (busy_on_install, once)
        self.busy = False
        self.busy_on_install = False
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._save({"boot_order": ["A", "B"], "left": {"A": TRIES, "B": TRIES}, "booted": "A", "boots": 1,
                        "versions": {"A": version, "B": None}})

    # -- RAUC --------------------------------------------------------------------------------------
    async def install(self, url: str, on_progress: Progress) -> None:
        if self.busy or self.busy_on_install:
            self.busy_on_install = False
            raise InstallFailed("Failed to contact rauc service: Already processing a different method",
                                "install_failed")
        state = self._load()
        target = "B" if state["booted"] == "A" else "A"
        state["left"][target] = 0  # from here on nothing boots the target until it is complete
        state["versions"][target] = None
        self._save(state)
        data = await self._read(url, on_progress)
        if self.fail_next is not None:
            (fault, message), self.fail_next = self.fail_next, None
            raise InstallFailed(message, fault)
        version, compatible = MANIFEST_UPDATE.search(data), MANIFEST_COMPATIBLE.search(data)
        if version is None or compatible is None:
            raise InstallFailed("no manifest with version and compatible in the bundle", "bundle_corrupt")
        if compatible.group(1).decode() != self.compatible:
            raise InstallFailed(f"Compatible mismatch: Expected '{self.compatible}' but bundle manifest has "
                                f"'{compatible.group(1).decode()}'", "incompatible")
        self.finish_install(version.group(1).decode())

    def finish_install(self, version: str) -> None:
        """What RAUC does once the slot is written: the version noted, the slot first with fresh tries
        (also what its service does on its own for an installation whose client went away)."""
        state = self._load()
        target = "B" if state["booted"] == "A" else "A"
        state["versions"][target] = version
        state["boot_order"] = [target] + [s for s in state["boot_order"] if s != target]
        state["left"][target] = TRIES
        self._save(state)
        log.info("fake slot %s now holds %s and boots first", target, version)

    async def _read(self, url: str, on_progress: Progress) -> bytes:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(url, headers={"Range": "bytes=0-3"}) as r:  # RAUC's first look (src/nbd.c)
                    if r.status != 206:
                        raise InstallFailed(f"failed to configure streaming: unexpected HTTP error code {r.status}",
                                            "download_failed")
                    size = int(r.headers["Content-Range"].rsplit("/", 1)[1])
                    await r.read()
                data = bytearray()
                while len(data) < size:
                    end = min(size, len(data) + CHUNK) - 1
                    async with http.get(url, headers={"Range": f"bytes={len(data)}-{end}"}) as r:
                        if r.status != 206:
                            raise InstallFailed(f"received http error {r.status}", "download_failed")
                        chunk = await r.read()
                    if len(chunk) != end - len(data) + 1:
                        raise InstallFailed("incomplete HTTP response", "download_failed")
                    data += chunk
                    on_progress(len(data) * 100 // size)
        except aiohttp.ClientError as exc:
            raise InstallFailed(f"Failed to stream bundle {url}: {type(exc).__name__}", "download_failed") from exc
        return bytes(data)

    async def status(self) -> SlotStatus:
        state = self._ask()
        primary = next((s for s in state["boot_order"] if state["left"][s] > 0), None)
        slots = {name: Slot(name, booted=name == state["booted"], good=state["left"][name] > 0,
                            version=state["versions"][name]) for name in ("A", "B")}
        return SlotStatus(booted=state["booted"], primary=primary, slots=slots)

    async def mark_good(self, which: Which = "booted") -> None:
        self._set_tries(which, TRIES)

    async def mark_bad(self, which: Which) -> None:
        self._set_tries(which, 0)

    def boot_id(self) -> str:
        return f"fake-boot-{self._load()['boots']}"

    def _set_tries(self, which: Which, tries: int) -> None:
        state = self._ask()
        slot = state["booted"] if which == "booted" else "B" if state["booted"] == "A" else "A"
        state["left"][slot] = tries
        self._save(state)

    # -- U-Boot ------------------------------------------------------------------------------------
    def reboot(self) -> str:
        """Boot the unit again as the boot script would; returns the slot that boots."""
        state = self._load()
        for slot in state["boot_order"]:
            if state["left"][slot] > 0:
                state["left"][slot] -= 1
                break
        else:
            state["left"] = {s: TRIES for s in state["left"]}
            slot = state["boot_order"][0]
        state["booted"], state["boots"] = slot, state["boots"] + 1
        self._save(state)
        return slot

    def booted(self) -> tuple[str, str | None]:
        """The slot that runs and its version, without a loop (the service reads it at start)."""
        state = self._load()
        return state["booted"], state["versions"][state["booted"]]

    def tries_left(self) -> dict[str, int]:
        return dict(self._load()["left"])

    # -- the file ----------------------------------------------------------------------------------
    def _ask(self) -> dict:
        """The state as RAUC's service answers for it: not while it is busy."""
        if self.busy:
            raise SlotBusy("rauc status: already processing a different method")
        return self._load()

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise SlotError(f"fake slot state {self.path} unreadable ({exc}); delete it to start afresh") from None

    def _save(self, state: dict) -> None:
        write_atomic(self.path, json.dumps(state))
