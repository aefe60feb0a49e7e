"""The kinds of connected peer the hub serves: a kiosk, a clerk's console, a guest's browser and a
citizen's browser at home."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from central.live.link import Link
from central.rooms.guest_links import Guest
from central.storage.database import Kiosk, Staff
from protocol.fleet import KioskSettings


@dataclass(eq=False)
class KioskPeer:
    """One kiosk's WebSocket. Per-connection kiosk state (e.g. flood limits) belongs here."""

    kiosk: Kiosk
    link: Link
    # A visit of this kiosk that was still in central's memory when it connected: unless the
    # first message resumes it, the appliance restarted and forgot it (kiosk_side.py).
    unclaimed_visit_id: str | None = None
    # The settings last sent to this kiosk (sent after welcome, and again on every change):
    # among them the departments it offers, the only ones it may request.
    settings: KioskSettings | None = None


@dataclass(eq=False)
class StaffPeer:
    """One clerk's console WebSocket."""

    staff: Staff
    link: Link
    presence: str = "available"
    visit_id: str | None = None  # the call this clerk is in
    user_agent: str | None = None  # the console's browser, for IT (central/live/clerk_video.py)


@dataclass(eq=False)
class GuestPeer:
    """An interpreter's or colleague's browser on /ws/guest; ``guest`` once it said a valid link's secret."""

    link: Link
    guest: Guest | None = None


@dataclass(eq=False)
class HomePeer:
    """A citizen's browser at home on ``/ws/visit``. ``id`` is random per connection and names nobody."""

    link: Link
    # The client's address (central/web/client.py) for the per-address limits only: never logged, never sent.
    address: str
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    visit_id: str | None = None  # the visit this connection asked for or resumed
