"""What the controller holds of a visit, how long it waits, and the call and sender it is given."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from protocol import messages as m


@dataclass(frozen=True)
class Timeouts:
    choosing_s: float = 60.0   # nobody touched anything: back to idle for the next citizen
    consent_s: float = 60.0
    ended_s: float = 8.0       # how long "nothing was kept" stays on screen
    notice_s: float = 12.0     # a refusal shown on the idle screen
    request_s: float = 15.0    # central did not confirm the visit request
    media_s: float = 30.0      # a call's media did not connect: report failed (central has its own timer too)
    booking_hint_s: float = 15.0  # no QR code read this long: offer typing the code, and say how to hold it
    booking_s: float = 90.0    # nothing happened on the appointment screen this long: back to idle


class Call(Protocol):
    """One call's media peer (appliance.call.peer.CallPeer)."""
    async def offer(self) -> str: ...
    async def accept_answer(self, sdp: str) -> None: ...
    async def add_candidate(self, candidate: m.Candidate) -> None: ...
    async def close(self) -> None: ...


Send = Callable[[m.Message], Awaitable[None]]
# ice_servers, and a callback the call gives its state to: "connected" | "failed" (media), or
# "camera_failed" | "microphone_failed" (a device of the call stopped; appliance/call/devices.py), or
# "video_rejected" (the clerk's browser refused the video: the call has audio only)
CallFactory = Callable[[list[m.IceServer], Callable[[str], None]], Call]


@dataclass
class Visit:
    visit_id: str | None = None      # None until central confirmed the request
    resume_token: str | None = None
    department: str = ""
    booking: str | None = None       # the appointment's code (protocol.base.BookingCode), sent with the request


@dataclass
class Leaving:
    """A visit the citizen left (cancel or hang-up) that central has not yet confirmed as ended.

    The screen moved on at once; this is what the kiosk still has to tell central,
    also after a reconnect (resume, then the fitting leave message for the state
    central reports). Dropped when central says the visit ended or does not know it.
    """
    visit_id: str
    resume_token: str | None
    reason: str | None = None  # the hang-up's reason (device_failed), told again after a reconnect
