"""The hub: applies kiosk and clerk messages to the waiting rooms and tells everyone concerned.

Assembled from one module per role (see central/live/core.py for the map):
the kiosk side, the staff side, guests in calls, the ending of visits, and the shared core.
"""
from __future__ import annotations

from dataclasses import dataclass

from central.live.core import DepartmentStatus, RecordVisit
from central.live.home_side import HomeSide
from central.live.kiosk_side import KioskSide
from central.live.peers import GuestPeer, HomePeer, KioskPeer, StaffPeer
from central.live.staff_side import MAX_MESSAGES_PER_VISIT, StaffSide
from central.live.takeover import TakeOver
from central.live.update_side import UpdateSide

__all__ = ["DepartmentStatus", "GuestPeer", "HomePeer", "Hub", "KioskPeer", "MAX_MESSAGES_PER_VISIT", "RecordVisit", "StaffPeer"]


@dataclass
class Hub(KioskSide, StaffSide, UpdateSide, HomeSide, TakeOver):
    """The one object the web layer talks to (``app["hub"]``)."""
