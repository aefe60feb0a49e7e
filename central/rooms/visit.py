"""One citizen's visit, from the button press to the hang-up."""
from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass, field


class VisitState(enum.Enum):
    WAITING = "waiting"
    IN_CALL = "in_call"


def new_id() -> str:
    return secrets.token_urlsafe(18)  # 24 URL-safe characters, 144 random bits


@dataclass(eq=False)
class Visit:
    kiosk_id: int | None  # None: a visit from home (home_id)
    kiosk_location: str
    department: str
    language: str
    origin: str = "kiosk"  # protocol.base.Origin: "kiosk", or "online" for a visit from home
    # A visit from home: its browser's connection (central/live/home_side.py), replaced when it reconnects.
    home_id: str | None = None
    # A booked appointment's slot start (Unix seconds): the visit goes ahead of walk-ins during it.
    slot_start: float | None = None
    # Its booking's code (kept only with the visit): if the visit ends before a clerk picked it up, the
    # booking may be used again (central/live/booked_visits.py).
    booking: str | None = None
    # Wall clock for display; monotonic for durations (the wall clock may jump).
    arrived_at: float = field(default_factory=time.time)
    arrived_mono: float = field(default_factory=time.monotonic)
    id: str = field(default_factory=new_id)
    resume_token: str = ""  # signed by the hub at every change of place (central/rooms/resume_token.py)
    state: VisitState = VisitState.WAITING
    clerk_id: int | None = None
    picked_up_mono: float | None = None
    picked_up_at: float | None = None  # wall clock, carried in the resume token
    # First pick-up counts for the wait statistic even if the visit is transferred later.
    first_wait_s: float | None = None
    messages: list[str] = field(default_factory=list)
    # Whether the kiosk has had call.start for the current call (it may have been offline at pick-up).
    kiosk_has_call: bool = False
    # (position, expected wait) last told to the kiosk: only changes are sent.
    last_told: tuple[int, int] | None = None

    def wire(self) -> dict:
        """The fields a staff console sees (protocol.console.WaitingVisit)."""
        return {"visit_id": self.id, "department": self.department, "kiosk_location": self.kiosk_location,
                "language": self.language, "arrived_at": self.arrived_at, "origin": self.origin,
                "slot_start": self.slot_start}
