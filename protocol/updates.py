"""The update messages: central offers a signed bundle, the kiosk reports how far it got.

A bundle is a RAUC bundle (verity format) of one whole root file system with its kernel, initrd
and device trees (docs/updates.md). Central offers it on the kiosk's one WebSocket; the kiosk
fetches it over HTTPS from ``path`` with Range requests (resumable, at most ``max_kbit_s``),
installs it into the other root slot, reboots into it once, and commits only after its health
check passed there; otherwise the boot loader falls back to the old slot on its own.

States and faults are defined once here; central's rollout, fleet page and /metrics, the kiosk's
update agent and the docs all name them from this module. Codes only, never free text.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from protocol.base import Message
from protocol.fleet import Version

# -- vocabulary ------------------------------------------------------------------

# Where one kiosk stands with one bundle, in the order they happen.
UpdateState = Literal[
    "offered",       # the kiosk has the offer and waits for its window (idle, outside office hours)
    "downloading",   # RAUC streams the bundle into the other slot (`progress_pct`)
    "installed",     # the other slot holds the new version; the kiosk waits to reboot (idle screen says when)
    "rebooting",     # the kiosk is restarting into the new version for its one trial
    "running",       # the new version passed its health check and is committed
    "rolled_back",   # the new version failed its trial; the kiosk runs the old one again (`fault`, `check`)
    "failed",        # nothing was changed: the bundle was refused or could not be fetched (`fault`)
]
UPDATE_STATES: tuple[str, ...] = UpdateState.__args__

UpdateFault = Literal[
    "signature_invalid",    # not signed by the city's key (or the certificate chain does not hold)
    "bundle_corrupt",       # the bundle's content does not match its signed hash (changed or truncated)
    "incompatible",         # a bundle for another kind of unit (RAUC `compatible`)
    "download_failed",      # central could not be reached for long enough, or refused the download
    "install_failed",       # RAUC could not write the other slot
    "interrupted",          # power or process lost while installing: the other slot is incomplete, not used
    "health_check_failed",  # the new version booted but failed a check (`check` says which)
    "boot_failed",          # the new version did not come up (panic, hang: the watchdog and the boot loader)
]
UPDATE_FAULTS: tuple[str, ...] = UpdateFault.__args__

# What the trial boot of a new version checks before it is committed (docs/updates.md).
HealthCheck = Literal["appliance_ready", "kiosk_page", "central", "camera", "microphone"]
HEALTH_CHECKS: tuple[str, ...] = HealthCheck.__args__

BundleId = Annotated[int, Field(ge=1, le=2**31, description="Central's number for the bundle.")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
BundlePath = Annotated[str, StringConstraints(pattern=r"^/updates/bundles/[0-9]{1,10}/[A-Za-z0-9._+~-]{1,100}\.raucb$"),
                       Field(description="Where on central the kiosk fetches the bundle (HTTPS, kiosk token).")]


# -- central -> kiosk -------------------------------------------------------------

class UpdateOffer(Message):
    """Install this bundle. Sent after `welcome` while the kiosk's ring has it, and when a ring opens.

    The kiosk answers with `update.status` at once (`offered`, or `running` when it already runs
    `version`) and again on every change of state.
    """
    type: Literal["update.offer"]
    bundle_id: BundleId
    version: Version
    size_bytes: Annotated[int, Field(ge=1, le=2**40)]
    sha256: Sha256 = Field(description="Of the whole bundle file (a download check; the signature is RAUC's).")
    path: BundlePath
    max_kbit_s: Annotated[int, Field(ge=64, le=10_000_000)] | None = Field(
        None, description="Bandwidth cap for the download; None: as fast as the line allows.")
    window: Literal["outside_hours", "now"] = Field(
        "outside_hours", description="`outside_hours`: install and reboot only while every department the kiosk "
                                     "offers is closed; `now`: as soon as nobody uses the kiosk. Never during a "
                                     "call or while a citizen waits, in either case.")


class UpdateWithdraw(Message):
    """Do not install this bundle (its rollout was paused or removed). No reply.

    A kiosk that is already installing finishes the slot but does not reboot into it.
    """
    type: Literal["update.withdraw"]
    bundle_id: BundleId


# -- kiosk -> central -------------------------------------------------------------

class UpdateStatus(Message):
    """How far the kiosk got with a bundle; on every change, and during a download every 5 % or 30 s. No reply."""
    type: Literal["update.status"]
    bundle_id: BundleId
    version: Version = Field(description="The bundle's version.")
    state: UpdateState
    progress_pct: Annotated[int, Field(ge=0, le=100)] | None = Field(None, description="While `downloading`.")
    downloaded_bytes: Annotated[int, Field(ge=0, le=2**40)] | None = Field(
        None, description="Bytes fetched from central for this bundle so far (adaptive updates fetch less than "
                          "`size_bytes`).")
    fault: UpdateFault | None = Field(None, description="With `failed` and `rolled_back`.")
    check: HealthCheck | None = Field(None, description="With `health_check_failed`: the check that failed.")
    running_version: Version = Field(description="The version the kiosk runs now.")
    reboot_at: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        None, description="With `installed`: when the kiosk plans to restart (ISO 8601), as its idle screen says.")
