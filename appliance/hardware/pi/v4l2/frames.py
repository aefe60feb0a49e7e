"""Turning a captured V4L2 buffer into an ``av.VideoFrame`` for aiortc's software encoder.

MJPEG is decoded with FFmpeg's decoder (PyAV); raw YUYV, NV12 and YU12 are only wrapped
(rows cut to the visible width where the driver pads them). aiortc converts to yuv420p itself.
"""
from __future__ import annotations

import logging

import av
import numpy as np
from av.video.frame import PictureType

from appliance.hardware.errors import DeviceUsageError
from appliance.hardware.pi.camera import yuv420_to_frame

log = logging.getLogger(__name__)


class FrameDecoder:
    """One per capture: ``decode(buffer)`` is a frame, or None for a damaged JPEG (a USB hiccup costs one frame)."""

    def __init__(self, fourcc: str, width: int, height: int, bytesperline: int) -> None:
        self.fourcc, self.width, self.height = fourcc, width, height
        self.bytesperline = bytesperline or (width * 2 if fourcc == "YUYV" else width)
        self.damaged = 0
        self._mjpeg = None
        if fourcc in ("MJPG", "JPEG"):
            self._mjpeg = av.CodecContext.create("mjpeg", "r")
        elif fourcc not in ("YUYV", "NV12", "YU12"):
            raise DeviceUsageError(f"no decoder for pixel format {fourcc}")

    def decode(self, data: bytes) -> av.VideoFrame | None:
        if self._mjpeg is not None:
            return self._decode_jpeg(data)
        width, height, stride = self.width, self.height, self.bytesperline
        if self.fourcc == "YUYV":
            rows = np.frombuffer(data, np.uint8, count=stride * height).reshape(height, stride)
            pixels = np.ascontiguousarray(rows[:, :width * 2]).reshape(height, width, 2)
            return av.VideoFrame.from_ndarray(pixels, format="yuyv422")
        planes = np.frombuffer(data, np.uint8, count=stride * height * 3 // 2).reshape(height * 3 // 2, stride)
        if self.fourcc == "YU12":
            return yuv420_to_frame(planes, width, height)
        # NV12: the interleaved chroma rows have the same stride as the luma rows.
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(planes[:, :width]), format="nv12")

    def _decode_jpeg(self, data: bytes) -> av.VideoFrame | None:
        try:
            frames = self._mjpeg.decode(av.Packet(data))
        except av.FFmpegError as exc:
            self.damaged += 1
            if self.damaged == 1 or self.damaged % 100 == 0:
                log.warning("camera sent %d damaged JPEG frame(s): %s", self.damaged, exc)
            return None
        if not frames:
            return None
        frame = frames[-1]
        # Every JPEG decodes as an I picture, and FFmpeg's encoders take a frame marked I as an order
        # to make a keyframe: unmarked, VP8 sends keyframes only when it (or the receiver) wants one.
        frame.pict_type = PictureType.NONE
        return frame
