"""Who gets a bundle, and what a kiosk's report means for the rollout: the rules, with no I/O.

A rollout opens in rings. First the **canary** kiosks city IT picked; then a **percentage** of the
fleet, chosen by a stable hash of the bundle and the kiosk (so raising the percentage only adds
kiosks, and another bundle picks another share); then **all** kiosks. Only one rollout is active at
a time. A kiosk it targets that rolls back, or refuses the bundle for good (bad signature, corrupt,
incompatible), pauses it until IT looks and resumes; a cut download or a lost install is simply
offered again when the kiosk next connects.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from protocol.updates import UPDATE_STATES

Ring = Literal["canary", "percent", "all"]
RINGS: tuple[str, ...] = Ring.__args__
RolloutState = Literal["active", "paused", "stopped"]
Window = Literal["outside_hours", "now"]
WINDOWS: tuple[str, ...] = Window.__args__

# A kiosk that reports these will never take this bundle: offering it again would only fail again.
FINAL_FAULTS = frozenset({"signature_invalid", "bundle_corrupt", "incompatible"})
BUCKETS = 10_000  # the percentage ring is judged in hundredths of a percent

# How far along the way a state is; failures stand apart (see next_state_allowed).
_RANK = {"offered": 0, "downloading": 1, "installed": 2, "rebooting": 3, "running": 4}
assert set(_RANK) | {"failed", "rolled_back"} == set(UPDATE_STATES)


@dataclass(frozen=True)
class PauseReason:
    """Why a rollout stopped by itself: which kiosk said what."""

    kiosk_id: int
    state: str            # rolled_back | failed
    fault: str | None
    check: str | None
    at: float             # unix seconds


@dataclass(frozen=True)
class Rollout:
    """One bundle going out. ``ring`` is the widest ring opened so far; each includes the ones before."""

    id: int
    bundle_id: int
    version: str
    size_bytes: int
    sha256: str
    path: str                      # where kiosks fetch it (the download endpoint)
    canary: frozenset[int]
    window: Window = "outside_hours"
    max_kbit_s: int | None = None
    ring: Ring = "canary"
    percent: int = 0               # the share of the fleet the percentage ring reached, 0..100
    state: RolloutState = "active"
    pause: PauseReason | None = None
    started_at: float = 0.0
    started_by: str = ""
    ended_at: float | None = None

    @property
    def live(self) -> bool:
        """Active or paused: the one rollout that counts now."""
        return self.state != "stopped"


def bucket(bundle_id: int, kiosk_id: int) -> int:
    """The kiosk's place, 0..BUCKETS-1, in this bundle's percentage ring. Stable across restarts and
    central processes (a hash, not Python's salted ``hash``)."""
    digest = hashlib.sha256(f"amtsklingel-rollout:{bundle_id}:{kiosk_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def ring_of(rollout: Rollout, kiosk_id: int) -> Ring:
    """The first ring that reaches this kiosk: canary if picked, percent if its bucket falls within the
    share opened (it stays there once all are opened), else all."""
    if kiosk_id in rollout.canary:
        return "canary"
    if bucket(rollout.bundle_id, kiosk_id) < rollout.percent * BUCKETS // 100:
        return "percent"
    return "all"


def targeted(rollout: Rollout, kiosk_id: int) -> bool:
    """The rollout has reached this kiosk (whether or not it is paused)."""
    if not rollout.live:
        return False
    return rollout.ring == "all" or ring_of(rollout, kiosk_id) != "all"


def is_final_failure(state: str, fault: str | None) -> bool:
    """This kiosk will not take this bundle: never offered it again."""
    return state == "rolled_back" or (state == "failed" and fault in FINAL_FAULTS)


def should_offer(rollout: Rollout | None, kiosk_id: int, running_version: str | None,
                 last_state: str | None, last_fault: str | None) -> bool:
    """Offer the rollout's bundle to this kiosk now (on connect, or as a ring opens)?"""
    return (rollout is not None and rollout.state == "active" and targeted(rollout, kiosk_id)
            and running_version != rollout.version
            and not (last_state is not None and is_final_failure(last_state, last_fault))
            and last_state != "running")


def next_state_allowed(previous: str | None, previous_fault: str | None, new: str, *, offered_again: bool) -> bool:
    """Whether a kiosk's report may follow the one before it (for the same bundle).

    States move forward, and may skip steps (a kiosk away during its reboot reports only the end).
    A failure may come at any point before the end. After a final failure nothing changes any more,
    after ``running`` only a rollback. ``offered`` (the kiosk starts over) is accepted after a failure that is offered
    again, or when central has offered the bundle again since the last report (``offered_again``:
    the kiosk reconnected, or the rollout was paused and resumed). Repeating a state is always fine.
    """
    if previous is None or new == previous:
        return True
    if previous == "running":
        # A kiosk asked during its trial boot may say it runs the version before the trial decided; if the
        # trial then fails, its word on the old version it runs again wins.
        return new == "rolled_back"
    if is_final_failure(previous, previous_fault):
        return False
    if previous == "failed":  # a retryable failure: the kiosk starts over
        return True
    if new in ("failed", "rolled_back"):
        return True
    if new == "offered":
        return offered_again
    return _RANK[new] > _RANK[previous]
