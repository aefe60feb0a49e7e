"""The camera's frames at the size and rate the kiosk can afford to encode in software.

When the clerk's browser cannot take the Pi 4's H.264 packets, aiortc encodes VP8 from frames
on the CPU. The camera runs at its own size and rate (1280x720 at 30 fps); encoding that in
software would take the Pi 4's cores from everything else, so this track hands on at most
``fps`` frames a second, scaled down to fit ``width`` x ``height`` (aspect kept).
"""
from __future__ import annotations

import av
from aiortc.mediastreams import MediaStreamTrack


def fitted_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled to fit ``max_width`` x ``max_height``, both even, never enlarged."""
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class FallbackVideoTrack(MediaStreamTrack):
    """``source``'s frames, at most ``fps`` a second and no larger than ``width`` x ``height``.

    Stopping this track stops ``source`` (the camera goes off with the call).
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack, width: int, height: int, fps: float) -> None:
        super().__init__()
        self.source, self.width, self.height, self.fps = source, width, height, fps
        self._next_pts: int | None = None

    def _due(self, frame: av.VideoFrame) -> bool:
        """On a steady grid of 1/fps: a 30 fps camera gives every other frame at 15 fps."""
        if frame.pts is None or frame.time_base is None:
            return True
        period = round(1 / (self.fps * frame.time_base))
        if self._next_pts is not None and frame.pts < self._next_pts - period // 4:  # a little early is on time
            return False
        self._next_pts = frame.pts + period if self._next_pts is None else \
            max(self._next_pts + period, frame.pts + period // 2)
        return True

    async def recv(self) -> av.VideoFrame:
        while True:
            frame = await self.source.recv()
            if self._due(frame):
                break
        width, height = fitted_size(frame.width, frame.height, self.width, self.height)
        if (width, height) == (frame.width, frame.height):
            return frame
        small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        small.pts, small.time_base = frame.pts, frame.time_base
        return small

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
        self.source.stop()

