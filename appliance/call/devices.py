"""Notices when the call's camera or microphone fails, so the call can go on without it or end.

A real device that fails mid-call ends its own track (the capture thread hit an error and
stopped it), raises from ``recv``, or simply stops delivering (a camera whose cable came
loose may leave its capture call waiting for ever); one that fails at call start raises
from ``track()``. :class:`WatchedTrack` sits between the device's track and the call: it
tells ``on_failed`` once when the device ended by itself or stalled, and never when the
call stopped it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

# No frame for this long is a failed device. Far above any pause a working camera or microphone
# makes (the Pi camera's first frame takes about a second), so a busy unit is not mistaken for one.
STALL_S = 8.0


class WatchedTrack(MediaStreamTrack):
    """A device's track in a call; ``on_failed()`` runs once if the device stops without being asked."""

    def __init__(self, source: MediaStreamTrack, on_failed: Callable[[], None], *, stall_s: float = STALL_S,
                 on_working: Callable[[], None] | None = None) -> None:
        """``on_working`` runs once, at the first frame: the device works in live use."""
        super().__init__()
        self.kind = source.kind
        self._source, self._on_failed, self._on_working, self.stall_s = source, on_failed, on_working, stall_s

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        try:
            async with asyncio.timeout(self.stall_s):
                frame = await self._source.recv()
        except TimeoutError:
            log.warning("%s delivered nothing for %.0f s", self.kind, self.stall_s)
            self._failed()
            raise MediaStreamError from None
        except MediaStreamError:
            self._failed()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke, the call gets an ended track, not a crash
            log.warning("%s track failed: %s", self.kind, type(exc).__name__)
            self._failed()
            raise MediaStreamError from exc
        on_working, self._on_working = self._on_working, None
        if on_working is not None:
            on_working()
        return frame

    def _failed(self) -> None:
        if self.readyState != "live":
            return  # the call stopped us: that is no fault
        on_failed, self._on_failed = self._on_failed, None
        self.stop()
        if on_failed is not None:
            on_failed()

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._source.stop()


def open_track(open_: Callable[[], MediaStreamTrack], device: str, on_failed: Callable[[], None],
               on_working: Callable[[], None] | None = None) -> MediaStreamTrack | None:
    """The device's watched track for a call, or None (``on_failed`` already called) if it does not start."""
    try:
        source = open_()
    except Exception as exc:  # noqa: BLE001 - any way a device refuses to start counts as failed
        log.warning("%s did not start for the call: %s", device, type(exc).__name__)
        on_failed()
        return None
    return WatchedTrack(source, on_failed, on_working=on_working)
