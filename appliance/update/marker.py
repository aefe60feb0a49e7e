"""``data_dir/update.json``: what the agent did with a bundle, kept across reboots on the data partition.

Written atomically (a power cut leaves the old file or the new one) at every step that a reboot
must know about: before the download (``downloading``), after the install (``installed``), before
the trial reboot (``rebooting``), during the trial (``trial``, with a failed check's fault), and the
outcome (``running``, ``rolled_back``, ``failed``), which stays until the next bundle so that a
repeated offer of the same bundle gets the same answer instead of a second try.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.service.files import write_atomic
from protocol.updates import HEALTH_CHECKS, UPDATE_FAULTS, HealthCheck, UpdateFault

log = logging.getLogger(__name__)

MARKER_FILE = "update.json"
Step = Literal["downloading", "installed", "rebooting", "trial", "running", "rolled_back", "failed"]
STEPS: tuple[str, ...] = Step.__args__
OUTCOMES = ("running", "rolled_back", "failed")


@dataclass(frozen=True)
class Marker:
    bundle_id: int
    version: str
    from_version: str
    from_slot: str | None
    target_slot: str | None
    step: Step
    boot_id: str = ""                  # the boot in which ``step`` was written
    window: str = "outside_hours"      # the offer's, for a restart after a restart of the service
    fault: UpdateFault | None = None
    check: HealthCheck | None = None
    reported: bool = False             # the outcome reached central

    def but(self, **changes) -> Marker:
        return dataclasses.replace(self, **changes)

    @property
    def outcome(self) -> bool:
        return self.step in OUTCOMES


def load(path: Path) -> Marker | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        marker = Marker(**{f.name: raw[f.name] for f in dataclasses.fields(Marker) if f.name in raw})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return None
    if (marker.step not in STEPS or (marker.fault is not None and marker.fault not in UPDATE_FAULTS)
            or (marker.check is not None and marker.check not in HEALTH_CHECKS)):
        log.warning("ignoring %s: unknown step, fault or check (written by another version?)", path)
        return None
    return marker


def save(path: Path, marker: Marker) -> None:
    write_atomic(path, json.dumps(dataclasses.asdict(marker), indent=1))


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
