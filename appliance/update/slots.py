"""The A/B slots as the update agent sees them: install into the other slot, which slot runs, commit
or give up a slot.

Two backends: rauc.py drives the real RAUC through its command line (rauc-service on D-Bus does
the work, with U-Boot's boot counter in ``uboot.env``); fake_slots.py mimics RAUC and U-Boot in a
state file, for tests and ``./build.sh demo``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from protocol.errors import AmtsklingelError
from protocol.updates import UpdateFault

SlotName = Literal["A", "B"]
Which = Literal["booted", "other"]
Progress = Callable[[int], None]  # percent of the installation, 0..100


class SlotError(AmtsklingelError, RuntimeError):
    """The slot backend could not do what was asked (RAUC not running, not allowed, a broken state)."""


class SlotBusy(SlotError):
    """RAUC's service works on an installation and answers nothing else until it is done (one that an
    earlier start of the appliance began, which the service finishes on its own)."""


class InstallFailed(SlotError):
    """The bundle was not installed; ``fault`` says why in the protocol's words. Nothing boots it."""

    def __init__(self, message: str, fault: UpdateFault) -> None:
        super().__init__(message)
        self.fault: UpdateFault = fault


@dataclass(frozen=True)
class Slot:
    name: SlotName
    booted: bool = False
    good: bool | None = None          # the boot loader's view: None when it does not say
    version: str | None = None        # of the bundle last installed there; None for the slot as flashed


@dataclass(frozen=True)
class SlotStatus:
    booted: SlotName | None
    primary: SlotName | None          # the slot the boot loader tries first next time
    slots: dict[str, Slot] = field(default_factory=dict)

    @property
    def other(self) -> SlotName | None:
        if self.booted is None:
            return None
        return "B" if self.booted == "A" else "A"

    @property
    def booted_version(self) -> str | None:
        slot = self.slots.get(self.booted or "")
        return slot.version if slot else None


class SlotBackend(Protocol):
    async def install(self, url: str, on_progress: Progress) -> None:
        """Stream the bundle at ``url`` into the other slot and make it the next boot's first try.
        Raises :class:`InstallFailed`."""

    async def status(self) -> SlotStatus: ...

    async def mark_good(self, which: Which = "booted") -> None:
        """Commit: the boot loader keeps booting this slot (tries topped up)."""

    async def mark_bad(self, which: Which) -> None:
        """The boot loader never picks this slot again until a new install."""

    def boot_id(self) -> str:
        """Changes with every boot of the unit (not with a restart of the service)."""
