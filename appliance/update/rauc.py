"""The real slots: RAUC's command line, which asks rauc-service over D-Bus (user amtsklingel may,
by the image's D-Bus policy).

``rauc install URL`` streams the bundle from the agent's loopback server (fetch.py), checks its
signature against the keyring built into the image, writes the other slot and makes it U-Boot's
first try with fresh tries. Its messages (RAUC 1.13, src/signature.c, bundle.c, nbd.c,
install.c) are turned into the protocol's faults by :func:`fault_for`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

from appliance.update.slots import InstallFailed, Progress, Slot, SlotBusy, SlotError, SlotStatus, Which
from protocol.updates import UpdateFault

log = logging.getLogger(__name__)

RAUC = "rauc"
INSTALL_TIMEOUT_S = 6 * 3600.0   # a village line at the cap may take hours; the proxy gives up long before
COMMAND_TIMEOUT_S = 60.0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PROGRESS = re.compile(r"^\W*(\d{1,3})%\s")
BUSY = re.compile(r"already processing a different method", re.I)  # src/service.c, while it installs

# First match wins; the order matters: a signature error while streaming also names the stream.
FAULTS: tuple[tuple[re.Pattern[str], UpdateFault], ...] = tuple((re.compile(p, re.I), f) for p, f in (
    (r"signature verification failed|failed to verify x509 cert|signature data is no valid cms|"
     r"failed to parse signature|signer certificate|unsupported number of signers|signature unverified|"
     r"cms_verify|certificate (has )?expired|unable to get local issuer", "signature_invalid"),
    (r"compatible mismatch|no installable image found|failed to find matching variant", "incompatible"),
    (r"verification of (root hash|data area) failed|bundle payload is corrupted|invalid hash for|"
     r"unexpected verity (hash|salt|size)|data chunk hash differs|check read from dm-|verification failed at|"
     r"bundle size \(\d+\) is too small|signature size .* exceeds|signature size is 0|invalid bundle format",
     "bundle_corrupt"),
    (r"received http error|unexpected http|range requests not supported|incomplete http response|"
     r"content-range|failed to stream bundle|failed to configure streaming|server not responding|"
     r"unauthorized: |(^|: )not found: |curl|couldn't connect|timed out|nbd", "download_failed"),
))


def fault_for(message: str) -> UpdateFault:
    """The protocol's fault for one of RAUC's error messages; ``install_failed`` when none fits."""
    for pattern, fault in FAULTS:
        if pattern.search(message):
            return fault
    return "install_failed"


class RaucSlots:
    def __init__(self, rauc: str = RAUC, boot_id_file: Path = BOOT_ID) -> None:
        self.rauc, self.boot_id_file = rauc, boot_id_file

    async def install(self, url: str, on_progress: Progress) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.rauc, "install", url, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            raise InstallFailed(f"{self.rauc} could not run ({exc.strerror}); is the image's rauc installed?",
                                "install_failed") from exc
        said: list[str] = []
        try:
            async with asyncio.timeout(INSTALL_TIMEOUT_S):
                async for raw in proc.stdout:
                    line = raw.decode(errors="replace").replace("\x1b[J", "").strip()
                    if found := PROGRESS.match(line):
                        on_progress(min(100, int(found.group(1))))
                    elif line:
                        said.append(line)
                        log.info("rauc: %s", line[:300])
                await proc.wait()
        except (TimeoutError, asyncio.CancelledError):
            if proc.returncode is None:
                proc.kill()  # the client only; rauc-service finishes or fails the slot on its own
                await proc.wait()
            raise
        if proc.returncode != 0:
            text = " ".join(said[-20:])[-2000:] or f"rauc install ended with {proc.returncode}"
            raise InstallFailed(text, fault_for(text))

    async def status(self) -> SlotStatus:
        out = await self._run("status", "--output-format=json")
        try:
            return parse_status(json.loads(out))
        except (ValueError, TypeError, AttributeError) as exc:
            raise SlotError(f"rauc status said something unexpected ({exc}); check rauc-service") from None

    async def mark_good(self, which: Which = "booted") -> None:
        await self._run("status", "mark-good", which)

    async def mark_bad(self, which: Which) -> None:
        await self._run("status", "mark-bad", which)

    def boot_id(self) -> str:
        try:
            return self.boot_id_file.read_text().strip()
        except OSError:
            return "unknown"

    async def _run(self, *args: str) -> str:
        command = f"{self.rauc} {' '.join(args)}"
        try:
            proc = await asyncio.create_subprocess_exec(self.rauc, *args, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                out, err = await proc.communicate()
        except (OSError, TimeoutError) as exc:
            raise SlotError(f"{command} could not run: {exc}") from exc
        if proc.returncode != 0 and BUSY.search(err.decode(errors="replace")):
            raise SlotBusy(f"{command}: rauc-service is busy with an installation; it answers when that is done")
        if proc.returncode != 0:
            raise SlotError(f"{command} failed ({proc.returncode}): {err.decode(errors='replace').strip()[:300]}; "
                            "check that rauc-service runs and the D-Bus policy lets this user call it")
        return out.decode(errors="replace")


def parse_status(data: dict) -> SlotStatus:
    """``rauc status --output-format=json``: ``booted`` is a bootname, ``slots`` a list of
    ``{name: {bootname, state, boot_status, slot_status: {bundle: {version}}}}``."""
    slots: dict[str, Slot] = {}
    primary = None
    for entry in data.get("slots") or []:
        for name, info in entry.items():
            bootname = info.get("bootname")
            if bootname not in ("A", "B"):
                continue  # not a root slot (none in our image, but RAUC allows more)
            boot_status = info.get("boot_status")
            bundle = (info.get("slot_status") or {}).get("bundle") or {}
            slots[bootname] = Slot(bootname, booted=info.get("state") == "booted" or data.get("booted") == bootname,
                                   good=None if boot_status not in ("good", "bad") else boot_status == "good",
                                   version=bundle.get("version") or None)
            if data.get("boot_primary") in (name, bootname):
                primary = bootname
    booted = data.get("booted") if data.get("booted") in ("A", "B") else None
    return SlotStatus(booted=booted, primary=primary, slots=slots)
