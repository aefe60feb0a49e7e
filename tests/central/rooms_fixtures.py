"""The ``rooms`` fixture of the contract test: each implementation of central/rooms/interface.py,
with a fixed clock, and a check that what an implementation stores elsewhere matches its memory."""
from __future__ import annotations

import contextlib
import time

from central.rooms import WaitingRooms

NOW = 1_800_000_000.0  # the rooms' clock (booked slots are compared with it)


def arrived(minutes_ago: float) -> dict:
    """A visit's arrival ``minutes_ago``, on both clocks a visit keeps."""
    return {"arrived_at": time.time() - 60 * minutes_ago, "arrived_mono": time.monotonic() - 60 * minutes_ago}


class InMemory(WaitingRooms):
    async def check_stored(self) -> None:
        """Nothing is stored outside the process."""


IMPLEMENTATIONS = ["memory"]


@contextlib.asynccontextmanager
async def open_rooms(implementation: str):
    yield InMemory(clock=lambda: NOW)
