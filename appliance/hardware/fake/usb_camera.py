"""A USB camera without the USB: what the kernel would hand ``v4l2.capture.Capture``, made in memory.

:func:`encode_stream` turns pictures into what a webcam sends in a :class:`Mode` (H.264 access
units, JPEGs, YUYV or NV12 buffers); :class:`FakeCapture` replays them at the camera's rate
through the same methods as ``Capture``, so ``UsbCamera`` runs unchanged above it (tests,
``bench/usb_camera.py``). ``unplug()`` makes the next read fail as an unplugged camera's does.
"""
from __future__ import annotations

import errno
import fractions
import threading
import time

import av
import numpy as np

from appliance.hardware.encoded import VIDEO_TIME_BASE
from appliance.hardware.errors import CameraError, DeviceUsageError
from appliance.hardware.pi.v4l2.capture import camera_failed
from appliance.hardware.pi.v4l2.choose import Mode
from appliance.hardware.pi.v4l2.h264 import NAL_PPS, NAL_SPS, START_CODE, nal_type, nal_units


def _unplugged(path: str) -> CameraError:
    """What ``Capture`` raises when the camera is pulled out under it."""
    return camera_failed(path, OSError(errno.ENODEV, "No such device"))


def pictures(width: int, height: int, count: int, *, seed: int = 4) -> list[av.VideoFrame]:
    """``count`` yuv420p pictures with what a camera sees: a smooth texture panning, a moving
    block, and fresh sensor-like noise every frame (flat test bars would compress unrealistically)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (height // 8 + 2, (2 * width) // 8 + 2)).astype(np.float32)
    texture = np.kron(coarse, np.ones((8, 8), np.float32))
    for axis in (0, 1):
        texture = sum(np.roll(texture, s, axis) for s in range(-4, 4)) / 8
    chroma = np.full(width * height // 2, 128, np.uint8)
    block = max(16, height // 6)
    frames = []
    for index in range(count):
        shift = (index * 3) % width
        luma = texture[:height, shift:shift + width] + rng.normal(0, 4, (height, width)).astype(np.float32)
        luma = np.clip(luma, 16, 235).astype(np.uint8)
        x = (index * 8) % (width - block)
        luma[height // 2 - block // 2:height // 2 + block // 2, x:x + block] = 235
        packed = np.concatenate((luma.reshape(-1), chroma)).reshape(height * 3 // 2, width)
        frames.append(av.VideoFrame.from_ndarray(packed, format="yuv420p"))
    return frames


def _h264(frames: list[av.VideoFrame], fps: int, headers_once: bool) -> list[bytes]:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
    codec.time_base, codec.framerate = VIDEO_TIME_BASE, fractions.Fraction(fps)
    codec.gop_size, codec.max_b_frames = fps, 0  # an IDR every second, as the camera is asked to
    codec.bit_rate = 2_000_000
    codec.options = {"profile": "baseline", "tune": "zerolatency", "preset": "veryfast"}
    units = []
    for index, frame in enumerate(frames):
        frame.pts, frame.time_base = index * 90000 // fps, VIDEO_TIME_BASE
        units.extend(bytes(p) for p in codec.encode(frame))
    units.extend(bytes(p) for p in codec.encode(None))
    if headers_once:  # like cameras that send SPS/PPS only when streaming starts
        units = units[:1] + [b"".join(START_CODE + u for u in nal_units(au) if nal_type(u) not in (NAL_SPS, NAL_PPS))
                             for au in units[1:]]
    return units


def _mjpeg(frames: list[av.VideoFrame], fps: int) -> list[bytes]:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = frames[0].width, frames[0].height, "yuvj422p"  # as UVC cameras send
    codec.time_base = fractions.Fraction(1, fps)
    codec.bit_rate = frames[0].width * frames[0].height * fps  # ~1 bit/pixel: a webcam's JPEG size
    out = []
    for index, frame in enumerate(frames):
        picture = frame.reformat(format="yuvj422p")
        picture.pts = index
        out.extend(bytes(p) for p in codec.encode(picture))
    out.extend(bytes(p) for p in codec.encode(None))
    return out


def encode_stream(frames: list[av.VideoFrame], mode: Mode, *, headers_once: bool = False) -> list[bytes]:
    """What a camera capturing ``frames`` in ``mode`` puts in its buffers, one item per frame."""
    fps = round(mode.fps)
    if mode.fourcc == "H264":
        return _h264(frames, fps, headers_once)
    if mode.fourcc == "MJPG":
        return _mjpeg(frames, fps)
    if mode.fourcc == "YUYV":
        return [f.reformat(format="yuyv422").to_ndarray().tobytes() for f in frames]
    if mode.fourcc == "NV12":
        return [f.reformat(format="nv12").to_ndarray().tobytes() for f in frames]
    raise DeviceUsageError(f"no fake stream for pixel format {mode.fourcc}")


class FakeCapture:
    """Replays ``stream`` (looping) at the mode's frame rate, where ``Capture`` would read the device."""

    def __init__(self, path: str, mode: Mode, stream: list[bytes], *, controls: tuple[str, ...] = ()) -> None:
        if not stream:
            raise DeviceUsageError("a fake capture needs at least one frame")
        self.path, self.mode, self.fps = path, mode, mode.fps
        self.width, self.height = mode.width, mode.height
        self.bytesperline = mode.width * 2 if mode.fourcc == "YUYV" else mode.width if mode.fourcc == "NV12" else 0
        self.controls = controls  # the H.264 controls this camera has
        self.bitrate: int | None = None  # what the camera was asked for
        self._stream = stream
        self._unplugged = threading.Event()
        self.started = self.restarts = self.reads = 0
        self.closed = False
        self._t0 = 0.0

    def configure_h264(self, fps, bitrate: int) -> list[str]:
        self.bitrate = bitrate
        return list(self.controls)

    def start(self) -> None:
        if self._unplugged.is_set():
            raise _unplugged(self.path)
        self.started += 1
        self._t0, self.reads = time.monotonic(), 0

    def read(self, timeout_s: float = 2.0) -> tuple[bytes, float]:
        due = self._t0 + self.reads / float(self.fps)
        wait = due - time.monotonic()
        if wait > 0:
            self._unplugged.wait(wait)
        if self._unplugged.is_set():
            raise _unplugged(self.path)
        # Copied, as Capture copies each frame out of the device's memory-mapped buffer.
        data = bytes(memoryview(self._stream[self.reads % len(self._stream)]))
        self.reads += 1
        return data, time.monotonic()

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def unplug(self) -> None:
        self._unplugged.set()

    def close(self) -> None:
        self.closed = True
