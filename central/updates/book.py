"""Central's memory of the rollout: the one live rollout and each kiosk's last update report.

Fed by the hub (offers on connect, ``update.status`` from kiosks) and the admin page's actions;
read by the fleet page and /metrics without touching the database. What must survive a restart
(the rollout, every kiosk's report) is written in batches by central/updates/persist.py: the book
only marks what changed.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from central.updates import rings
from central.updates.rings import PauseReason, Rollout, is_final_failure, ring_of, targeted
from protocol.errors import ErrorCode, ProtocolError
from protocol.updates import UpdateStatus

log = logging.getLogger(__name__)

# Not a report's state: a kiosk the open rings reach that has not had the offer yet (offline), and
# one the rollout has not reached yet.
WAITING, NOT_REACHED = "waiting", "not_reached"


@dataclass
class KioskUpdate:
    """One kiosk's last report on one bundle (``offered`` as central sent the offer, until it answers)."""

    kiosk_id: int
    bundle_id: int
    version: str
    state: str
    updated_at: float
    progress_pct: int | None = None
    downloaded_bytes: int | None = None
    fault: str | None = None
    check: str | None = None
    running_version: str | None = None
    reboot_at: str | None = None
    # Central offered the bundle again since this report (a reconnect, a resume): the kiosk may start over.
    offered_again: bool = field(default=False, compare=False)
    # Central told the kiosk to leave this bundle (update.withdraw) and has not offered it again since.
    withdrawn: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Shown:
    """What the fleet page says about a kiosk's update."""

    state: str
    version: str
    at: float
    progress_pct: int | None = None
    fault: str | None = None
    check: str | None = None
    reboot_at: str | None = None
    downloaded_bytes: int | None = None


@dataclass
class UpdateBook:
    clock: Callable[[], float] = time.time
    rollout: Rollout | None = None
    statuses: dict[tuple[int, int], KioskUpdate] = field(default_factory=dict)  # (kiosk, bundle) -> report
    latest: dict[int, KioskUpdate] = field(default_factory=dict)                # kiosk -> newest report
    dirty: set[tuple[int, int]] = field(default_factory=set)
    rollout_dirty: bool = False
    on_change: Callable[[], None] | None = None

    # -- offers -------------------------------------------------------------------
    def offer_for(self, kiosk_id: int, running_version: str | None, *, only_new: bool = False) -> Rollout | None:
        """The rollout to offer this kiosk now, if any; noted as offered (so its reports are accepted).
        ``only_new``: None if it was offered the bundle before."""
        rollout = self.rollout
        if rollout is None:
            return None
        last = self.statuses.get((kiosk_id, rollout.bundle_id))
        if only_new and last is not None:
            return None
        if not rings.should_offer(rollout, kiosk_id, running_version, last and last.state, last and last.fault):
            return None
        if last is None:
            self._put(KioskUpdate(kiosk_id, rollout.bundle_id, rollout.version, "offered", self.clock()))
        else:
            last.offered_again, last.withdrawn = True, False
        return rollout

    def withdrawn_from(self, kiosk_ids: Iterable[int], versions: dict[int, str | None]) -> list[int]:
        """Of these kiosks, those to tell that the live rollout's bundle is withdrawn: reached by it and
        neither running it nor done with it."""
        rollout = self.rollout
        if rollout is None:
            return []
        out = []
        for kiosk_id in kiosk_ids:
            last = self.statuses.get((kiosk_id, rollout.bundle_id))
            if (targeted(rollout, kiosk_id) and versions.get(kiosk_id) != rollout.version and last is not None
                    and last.state != "running" and not is_final_failure(last.state, last.fault)):
                last.withdrawn = True
                out.append(kiosk_id)
        return out

    def stale_for(self, kiosk_id: int) -> int | None:
        """On connect: a bundle this kiosk is still on its way with that central no longer wants it to take
        (its rollout stopped, was replaced or is paused while the kiosk was away): its id, to withdraw, and
        noted as withdrawn."""
        last = self.latest.get(kiosk_id)
        if last is None or last.withdrawn or last.state not in ("offered", "downloading", "installed"):
            return None
        rollout = self.rollout
        if rollout is not None and rollout.bundle_id == last.bundle_id and rollout.state == "active":
            return None
        last.withdrawn = True
        return last.bundle_id

    # -- reports ------------------------------------------------------------------
    def record(self, kiosk_id: int, msg: UpdateStatus) -> Rollout | None:
        """Take a kiosk's ``update.status``. Raises ProtocolError (and changes nothing) for a bundle it
        was not offered, another version than offered, or a state that cannot follow the last one.
        Returns the rollout if this report paused it."""
        last = self.statuses.get((kiosk_id, msg.bundle_id))
        if last is None:
            raise ProtocolError(ErrorCode.NOT_OFFERED, f"central has not offered bundle {msg.bundle_id} to this "
                                "kiosk; report only on bundles from an update.offer")
        if msg.version != last.version:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"version: bundle {msg.bundle_id} is version "
                                f"{last.version}, not {msg.version}")
        if msg.state in ("failed", "rolled_back") and msg.fault is None:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"fault: a {msg.state} report must say why (fault)")
        if msg.check is not None and msg.fault != "health_check_failed":
            raise ProtocolError(ErrorCode.INVALID_FIELD, "check: only with the fault health_check_failed")
        if msg.state == "running" and msg.running_version != msg.version:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"running_version: a kiosk running bundle "
                                f"{msg.bundle_id} runs {msg.version}, not {msg.running_version}")
        if not rings.next_state_allowed(last.state, last.fault, msg.state, offered_again=last.offered_again):
            raise ProtocolError(ErrorCode.WRONG_STATE, f"bundle {msg.bundle_id}: {msg.state} cannot follow "
                                f"{last.state}; report the state the kiosk is in now")
        newly_final = (is_final_failure(msg.state, msg.fault)
                       and not is_final_failure(last.state, last.fault))
        self._put(KioskUpdate(kiosk_id, msg.bundle_id, msg.version, msg.state, self.clock(), msg.progress_pct,
                              msg.downloaded_bytes, msg.fault, msg.check, msg.running_version, msg.reboot_at,
                              withdrawn=last.withdrawn))
        rollout = self.rollout
        if (newly_final and rollout is not None and rollout.state == "active" and rollout.bundle_id == msg.bundle_id
                and targeted(rollout, kiosk_id)):
            log.warning("rollout %d paused: kiosk %d reports %s (%s %s)", rollout.id, kiosk_id, msg.state,
                        msg.fault, msg.check or "")
            self.set_rollout(dataclasses.replace(rollout, state="paused", pause=PauseReason(
                kiosk_id, msg.state, msg.fault, msg.check, self.clock())), stored=False)
            return self.rollout
        return None

    # -- the rollout ---------------------------------------------------------------
    def set_rollout(self, rollout: Rollout | None, *, stored: bool = True) -> None:
        """The live rollout changed: an admin's action (already ``stored``), or a pause (to be written);
        a stopped one is no longer live."""
        self.rollout = rollout if rollout is not None and rollout.live else None
        if not stored:
            self.rollout_dirty = True
            self._changed()

    # -- reading ------------------------------------------------------------------
    def shown(self, kiosk_id: int, running_version: str | None) -> Shown | None:
        """For the fleet page: the live rollout's bundle if the kiosk heard of it, else its newest report.
        A kiosk whose health report names the bundle's version runs it, whatever it last said."""
        rollout = self.rollout
        found = self.statuses.get((kiosk_id, rollout.bundle_id)) if rollout is not None else None
        found = found or self.latest.get(kiosk_id)
        if found is None:
            return None
        state = "running" if running_version == found.version else found.state
        return Shown(state, found.version, found.updated_at, found.progress_pct if state == "downloading" else None,
                     found.fault, found.check, found.reboot_at, found.downloaded_bytes)

    def state_of(self, rollout: Rollout, kiosk_id: int, running_version: str | None) -> str:
        """Where the kiosk stands in this rollout: a report's state, WAITING or NOT_REACHED."""
        if running_version == rollout.version:
            return "running"
        found = self.statuses.get((kiosk_id, rollout.bundle_id))
        if found is not None:
            return found.state
        return WAITING if targeted(rollout, kiosk_id) else NOT_REACHED

    def counts(self, kiosks: Iterable[tuple[int, str | None]]) -> dict[str, Counter[str]]:
        """Per ring, how many of these (kiosk id, running version) stand in each state of the live rollout."""
        rollout = self.rollout
        out: dict[str, Counter[str]] = {}
        if rollout is None:
            return out
        for kiosk_id, version in kiosks:
            out.setdefault(ring_of(rollout, kiosk_id), Counter())[self.state_of(rollout, kiosk_id, version)] += 1
        return out

    # -- persistence (central/updates/persist.py) ------------------------------------
    def restore(self, rollout: Rollout | None, statuses: Iterable[KioskUpdate]) -> None:
        self.rollout = rollout if rollout is not None and rollout.live else None
        for status in statuses:
            self._put(status, mark=False)

    def take_dirty(self) -> tuple[Rollout | None, list[KioskUpdate]]:
        """(the live rollout if it changed here, the reports to write); clean from here on."""
        rows = [self.statuses[key] for key in sorted(self.dirty) if key in self.statuses]
        rollout = self.rollout if self.rollout_dirty else None
        self.rollout_dirty = False
        self.dirty.clear()
        return rollout, rows

    def _put(self, status: KioskUpdate, *, mark: bool = True) -> None:
        key = (status.kiosk_id, status.bundle_id)
        self.statuses[key] = status
        newest = self.latest.get(status.kiosk_id)
        if newest is None or newest.bundle_id == status.bundle_id or newest.updated_at <= status.updated_at:
            self.latest[status.kiosk_id] = status
        if mark:
            self.dirty.add(key)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
