"""Streaming capture from a V4L2 device: memory-mapped buffers, one blocking read at a time.

``read()`` blocks (up to ``timeout_s``), so it runs on a capture thread, never on the event
loop. A device that is unplugged answers with ENODEV (or EIO, or no frames at all): every
such failure is raised as ``CameraError`` saying so.
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
import select
import time
from fractions import Fraction

from appliance.hardware.errors import CameraError
from appliance.hardware.pi.v4l2 import ioctls
from appliance.hardware.pi.v4l2.choose import Mode

log = logging.getLogger(__name__)

BUFFERS = 4  # enough that the camera never waits for us, few enough to add no latency
READ_TIMEOUT_S = 2.0
_GONE = (errno.ENODEV, errno.EIO, errno.ENXIO, errno.EPIPE)
_TIMESTAMP_MASK, _TIMESTAMP_MONOTONIC = 0xE000, 0x2000
_FLAG_ERROR = 0x0040  # V4L2_BUF_FLAG_ERROR


def camera_failed(path: str, exc: OSError) -> CameraError:
    if exc.errno in _GONE:
        return CameraError(f"camera {path} disconnected ({os.strerror(exc.errno)}): check its USB cable")
    return CameraError(f"camera {path} failed: {exc}")


def open_device(path: str) -> int:
    """The device opened for capture, or a ``CameraError`` saying what to check."""
    try:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CameraError(f"camera {path} is not there: check the USB cable, `v4l2-ctl --list-devices`, and "
                          "[hardware.camera] device (or set it to \"auto\")") from None
    except PermissionError:
        raise CameraError(f"no permission to open camera {path}: the kiosk's user must be in group video") from None
    except OSError as exc:
        raise camera_failed(path, exc) from exc


class Capture:
    """One device set to one :class:`Mode`; ``start()``, then ``read()`` until ``close()``."""

    def __init__(self, path: str, mode: Mode) -> None:
        self.path, self.mode = path, mode
        self._fd = open_device(path)
        self._maps: list[mmap.mmap] = []
        self._streaming = False
        self.damaged = 0  # frames the driver marked as damaged and that were skipped
        try:
            pix = ioctls.set_format(self._fd, mode.fourcc, mode.width, mode.height)
            got = ioctls.fourcc_text(pix.pixelformat)
            if got != mode.fourcc:
                raise CameraError(f"camera {path} refused format {mode.fourcc} (it set {got})")
            self.width, self.height, self.bytesperline = pix.width, pix.height, pix.bytesperline
            self.fps = self._set_rate(mode.fps)
        except OSError as exc:
            self.close()
            raise camera_failed(path, exc) from exc
        except BaseException:
            self.close()
            raise

    def _set_rate(self, fps: Fraction) -> Fraction:
        try:
            return ioctls.set_frame_rate(self._fd, fps)
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.EINVAL):
                raise
            log.info("camera %s does not set its frame rate (%s); it runs at its own", self.path, exc)
            return fps

    def configure_h264(self, fps: Fraction, bitrate: int) -> list[str]:
        """Ask the camera's encoder for an IDR every second with SPS/PPS in front, and for ``bitrate``,
        where it has the controls; returns the ones it has."""
        wanted = {"video_bitrate": (ioctls.CID_VIDEO_BITRATE, bitrate),
                  "h264_i_frame_period": (ioctls.CID_H264_I_PERIOD, round(fps)),
                  "video_gop_size": (ioctls.CID_GOP_SIZE, round(fps)),
                  "repeat_sequence_header": (ioctls.CID_REPEAT_SEQ_HEADER, 1),
                  "prepend_sps_pps_to_idr": (ioctls.CID_PREPEND_SPSPPS_TO_IDR, 1)}
        return [name for name, (cid, value) in wanted.items() if ioctls.try_control(self._fd, cid, value)]

    def start(self) -> None:
        fd = self._fd
        try:
            request = ioctls.RequestBuffers(count=BUFFERS, type=ioctls.BUF_TYPE_VIDEO_CAPTURE,
                                            memory=ioctls.MEMORY_MMAP)
            ioctls.ioctl(fd, ioctls.VIDIOC_REQBUFS, request)
            for index in range(request.count):
                buf = self._buffer(index)
                ioctls.ioctl(fd, ioctls.VIDIOC_QUERYBUF, buf)
                self._maps.append(mmap.mmap(fd, buf.length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                            offset=buf.m.offset))
                ioctls.ioctl(fd, ioctls.VIDIOC_QBUF, buf)
            ioctls.ioctl(fd, ioctls.VIDIOC_STREAMON, ioctls.ctypes.c_int(ioctls.BUF_TYPE_VIDEO_CAPTURE))
            self._streaming = True
        except OSError as exc:
            raise camera_failed(self.path, exc) from exc

    @staticmethod
    def _buffer(index: int = 0) -> ioctls.Buffer:
        return ioctls.Buffer(index=index, type=ioctls.BUF_TYPE_VIDEO_CAPTURE, memory=ioctls.MEMORY_MMAP)

    def read(self, timeout_s: float = READ_TIMEOUT_S) -> tuple[bytes, float]:
        """The next frame's bytes and its capture time (``time.monotonic()`` clock)."""
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                ready, _, failed = select.select([self._fd], [], [self._fd], max(0.0, deadline - time.monotonic()))
                if not ready and not failed:
                    raise CameraError(f"camera {self.path} delivered no picture for {timeout_s:.0f} s: check its "
                                      "USB cable and power (a USB hub without its own power supply may be too weak)")
                buf = self._buffer()
                try:
                    ioctls.ioctl(self._fd, ioctls.VIDIOC_DQBUF, buf)
                except BlockingIOError:  # woken without a filled buffer (an event): wait on
                    continue
                if buf.flags & _FLAG_ERROR or not buf.bytesused:
                    # Damaged in transfer (a USB hiccup): a broken JPEG or H.264 frame helps nobody.
                    self.damaged += 1
                    ioctls.ioctl(self._fd, ioctls.VIDIOC_QBUF, buf)
                    continue
                break
            data = self._maps[buf.index][:buf.bytesused]
            # Read before QBUF, which hands the buffer back to the driver and clears its timestamp.
            if buf.flags & _TIMESTAMP_MASK == _TIMESTAMP_MONOTONIC:
                captured = buf.timestamp.tv_sec + buf.timestamp.tv_usec / 1e6
            else:
                captured = time.monotonic()
            ioctls.ioctl(self._fd, ioctls.VIDIOC_QBUF, buf)
        except OSError as exc:
            raise camera_failed(self.path, exc) from exc
        return data, captured

    def restart(self) -> None:
        """Stream off and on again: a UVC camera starts a new stream with an IDR."""
        self._stop_streaming()
        self.start()

    def _stop_streaming(self) -> None:
        if self._streaming:
            self._streaming = False
            try:
                ioctls.ioctl(self._fd, ioctls.VIDIOC_STREAMOFF, ioctls.ctypes.c_int(ioctls.BUF_TYPE_VIDEO_CAPTURE))
            except OSError:
                pass  # unplugged: nothing is streaming any more
        for m in self._maps:
            m.close()
        self._maps = []
        if self._fd >= 0:
            try:
                ioctls.ioctl(self._fd, ioctls.VIDIOC_REQBUFS, ioctls.RequestBuffers(
                    count=0, type=ioctls.BUF_TYPE_VIDEO_CAPTURE, memory=ioctls.MEMORY_MMAP))
            except OSError:
                pass

    def close(self) -> None:
        self._stop_streaming()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
