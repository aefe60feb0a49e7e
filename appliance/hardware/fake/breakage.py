"""Breaking fake devices on purpose: the self-test and the call's fault handling are tested with these.

A real camera or microphone that fails does one of two things: it will not start (``track()``
raises), or its track stops by itself in the middle (the capture thread hit an error and ended
the track). :class:`Breakage` holds which of the two a fake device is told to do, and whether it is
plugged in at all (``unplug()``/``plug()``: a USB device pulled out and put back);
:class:`BreakableTrack` wraps the fake's track and ends it after the frames it has left.
"""
from __future__ import annotations

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.errors import HardwareError


class Breakage:
    """Whether a fake device works. ``fail()`` at once, or ``fail(after_frames=n)`` mid-stream."""

    def __init__(self, device: str, error: type[HardwareError]) -> None:
        self.device, self.error = device, error
        self.broken = False
        self.frames_left: int | None = None  # frames the running tracks still deliver, all together
        self.plugged_in = True

    def fail(self, after_frames: int | None = None) -> None:
        """``None``: the device will not start any more and running tracks end at their next frame.
        ``n``: running (or next started) tracks deliver ``n`` more frames in all, then end."""
        self.broken = after_frames is None
        self.frames_left = 0 if after_frames is None else after_frames

    def repair(self) -> None:
        self.broken, self.frames_left = False, None

    def unplug(self) -> None:
        """Pulled out: running tracks end at their next frame, nothing starts until ``plug()``."""
        self.plugged_in = False
        self.fail()

    def plug(self) -> None:
        """Plugged in again: the device works as new."""
        self.plugged_in = True
        self.repair()

    def present(self) -> bool:
        return self.plugged_in

    def check_start(self) -> None:
        if self.broken:
            raise self.error(f"fake {self.device} unplugged: plug it in again" if not self.plugged_in
                             else f"fake {self.device} told to fail: it does not start")

    def take_frame(self) -> bool:
        """True if one more frame may be delivered."""
        if self.frames_left is None:
            return True
        if self.frames_left <= 0:
            self.broken = True  # once it died mid-stream, it does not come back by itself
            return False
        self.frames_left -= 1
        return True


class BreakableTrack(MediaStreamTrack):
    """The fake device's track; once its :class:`Breakage` says so, it stops by itself like a failed device."""

    def __init__(self, source: MediaStreamTrack, breakage: Breakage) -> None:
        super().__init__()
        self.kind = source.kind
        self._source, self._breakage = source, breakage

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._source.recv()
        if not self._breakage.take_frame():
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._source.stop()
