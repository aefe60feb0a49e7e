"""A USB (UVC) webcam, or any V4L2 capture device, as the kiosk camera.

A camera with its own H.264 is passed through as the Pi 4's camera is (``EncodedVideoTrack``):
the Pi decodes and encodes nothing. Otherwise its MJPEG or raw frames are decoded here and
aiortc encodes them (VP8, or H.264 in software) at the size ``choose`` allows for that.

Devices are looked up again at every ``track()``: a camera that was unplugged and plugged in
again (same /dev/v4l/by-id/ name, maybe another /dev/videoN) works at the next call.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import os
import threading
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.encoded import EncodedVideoTrack
from appliance.hardware.errors import CameraError
from appliance.hardware.pi.camera import LatestFrameTrack
from appliance.hardware.pi.v4l2 import ioctls
from appliance.hardware.pi.v4l2.capture import READ_TIMEOUT_S, Capture
from appliance.hardware.pi.v4l2.choose import Choice, Wanted, choose_camera
from appliance.hardware.pi.v4l2.devices import DeviceInfo
from appliance.hardware.pi.v4l2.frames import FrameDecoder
from appliance.hardware.pi.v4l2.h264 import SequenceHeaders

log = logging.getLogger(__name__)

# A camera that sends no IDR for this long is restarted (a new UVC stream begins with one):
# without keyframes a clerk who lost a packet would see a frozen picture until the call ends.
KEYFRAME_DEADLINE_S = 5
# H.264 passed through cannot follow the clerk's bandwidth estimate: ask a camera that has the control
# for what the Pi camera sends (appliance/hardware/pi/backend.py).
DEFAULT_BITRATE = 1_500_000


def stable_names() -> dict[str, str]:
    """/dev/videoN -> its /dev/v4l/by-id/ name (what stays the same across ports and boots)."""
    names = {}
    for link in sorted(glob.glob("/dev/v4l/by-id/*")):
        names.setdefault(os.path.realpath(link), link)
    return names


def list_devices(paths: list[str] | None = None) -> list[DeviceInfo]:
    """What each video node offers; a node that vanishes or refuses while we look is left out."""
    names = stable_names()
    found = []
    for path in paths if paths is not None else sorted(glob.glob("/dev/video*")):
        try:
            info = ioctls.describe(path)
        except OSError as exc:
            log.info("skipping %s: %s", path, exc)
            continue
        stable = names.get(os.path.realpath(path), path)
        found.append(DeviceInfo(stable, info.driver, info.card, info.bus_info, info.device_caps, info.formats))
    return found


class CameraStopped(CameraError, MediaStreamError):
    """The camera's track ended because the camera failed: a ``CameraError`` for the fault path, and a
    ``MediaStreamError`` for whatever only waits for a track to end (aiortc's sender, the self-test)."""


class FailingTrack(MediaStreamTrack):
    """The camera's track as the call sees it: ``recv`` raises ``CameraError`` once the capture failed.

    ``inner`` (set right after construction) is the queue the capture thread fills.
    """

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.inner: EncodedVideoTrack | LatestFrameTrack | None = None
        self.error: CameraStopped | None = None

    def fail(self, error: CameraError) -> None:
        """From the capture thread: remember why, and end the inner track so a waiting ``recv`` wakes."""
        self.error = CameraStopped(str(error))
        self.error.__cause__ = error
        try:
            self.inner._loop.call_soon_threadsafe(self.inner.stop)
        except RuntimeError:  # the loop is gone: nobody is waiting
            pass

    async def recv(self):
        if self.error is not None:
            raise self.error
        try:
            return await self.inner.recv()
        except MediaStreamError:
            if self.error is not None:
                raise self.error from None
            raise

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self.inner.stop()


class UsbCamera:
    """A V4L2 camera (see :class:`appliance.hardware.interfaces.Camera`).

    ``device`` is "auto" (the best camera by what it can do) or a path, best a
    /dev/v4l/by-id/ name. ``lister`` and ``opener`` stand in for the kernel in tests.

    With ``missing_ok``, a camera that is not plugged in when the kiosk starts is no reason not to
    start: the camera is then ``present()`` false (the kiosk shows and reports it missing, as one
    pulled out later) and ``track()`` raises ``CameraError`` saying what was looked at, until one is
    plugged in. Without it, the constructor raises that error.
    """

    def __init__(self, wanted: Wanted | None = None, device: str = "auto", *,
                 lister: Callable[[list[str] | None], list[DeviceInfo]] = list_devices,
                 opener: Callable[[str, object], Capture] = Capture,
                 keyframe_deadline_s: float = KEYFRAME_DEADLINE_S, missing_ok: bool = False,
                 bitrate: int = DEFAULT_BITRATE) -> None:
        self.wanted, self.device, self.bitrate = wanted or Wanted(), device, bitrate
        self.keyframe_deadline_s = keyframe_deadline_s
        self._lister, self._opener = lister, opener
        self.name, self.encoded, self.path = "USB camera (none found)", False, ""
        try:
            choice = self._choose(None)
        except CameraError as exc:
            if not missing_ok:
                raise
            log.warning("%s. The kiosk shows the camera as missing until one is plugged in", exc)
        else:
            self.name, self.encoded = choice.name, choice.mode.kind == "h264"
            self.path = choice.device.path
            log.info("camera %s at %s", self.name, choice.device.path)
        self._track: FailingTrack | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _choose(self, encoded: bool | None) -> Choice:
        if self.device == "auto":
            devices = self._lister(None)
        else:  # only the configured one, under the name it was configured by; if it is missing, choose_camera says so
            found = self._lister([self.device]) if os.path.exists(self.device) else []
            devices = [dataclasses.replace(d, path=self.device) for d in found]
        return choose_camera(devices, self.wanted, encoded=encoded, device=self.device)

    def track(self, *, encoded: bool | None = None) -> MediaStreamTrack:
        self._stop()
        self._join()  # the device is free only once the last capture has closed it
        choice = self._choose(encoded)
        capture = self._opener(choice.device.path, choice.mode)
        try:
            if choice.mode.kind == "h264":
                asked = capture.configure_h264(choice.send_fps, self.bitrate)
                log.info("camera %s: H.264 controls set: %s", choice.name, ", ".join(asked) or "none (none offered)")
            capture.start()
        except BaseException:
            capture.close()
            raise
        self.name, self.encoded, self.path = choice.name, choice.mode.kind == "h264", choice.device.path
        track = FailingTrack()
        # Bound to this track: a late stop of an earlier track must not end the current one.
        def on_stop() -> None:
            self._stop(track)

        track.inner = EncodedVideoTrack(on_stop=on_stop) if self.encoded else LatestFrameTrack(on_stop=on_stop)
        self._track = track
        self._stopping = stopping = threading.Event()
        target = self._pass_h264 if self.encoded else self._decode_frames
        self._thread = threading.Thread(target=self._run, args=(target, capture, choice, track, stopping),
                                        name="usb-camera", daemon=True)
        self._thread.start()
        return track

    def present(self) -> bool:
        """False while the camera is unplugged (its device node is gone); polled every ~2 s between calls
        (appliance/fleet/watch.py). With ``device = "auto"`` another usable camera plugged in counts."""
        if self.path and os.path.exists(self.path):
            return True
        if self.device != "auto" and not os.path.exists(self.device):
            return False
        try:  # only while the camera is missing: listing opens every video node
            choice = self._choose(None)
        except CameraError:
            return False
        self.name, self.encoded, self.path = choice.name, choice.mode.kind == "h264", choice.device.path
        return True

    def _run(self, target, capture: Capture, choice: Choice, track: FailingTrack, stopping: threading.Event) -> None:
        try:
            target(capture, choice, track.inner, stopping)
        except CameraError as exc:
            if not stopping.is_set():
                log.warning("%s", exc)
                track.fail(exc)
        except Exception as exc:  # noqa: BLE001 - any failure of the capture ends the track with a reason
            if not stopping.is_set():
                log.exception("camera capture failed")
                track.fail(CameraError(f"camera {choice.device.path} failed: {exc}"))
        finally:
            capture.close()

    def _pass_h264(self, capture: Capture, choice: Choice, track: EncodedVideoTrack, stopping: threading.Event) -> None:
        headers = SequenceHeaders()
        deadline = self.keyframe_deadline_s * float(choice.send_fps)
        while not stopping.is_set():
            data, captured = capture.read()
            access_unit, keyframe = headers.process(data)
            track.put(access_unit, keyframe, int(captured * 1_000_000))
            if headers.frames_since_idr > deadline:
                log.warning("camera %s sent no keyframe for %g s; restarting its stream", capture.path,
                            self.keyframe_deadline_s)
                headers.frames_since_idr = 0
                capture.restart()

    @staticmethod
    def _decode_frames(capture: Capture, choice: Choice, track: LatestFrameTrack, stopping: threading.Event) -> None:
        decoder = FrameDecoder(choice.mode.fourcc, capture.width, capture.height, capture.bytesperline)
        period = 1 / float(choice.send_fps)
        due = None
        while not stopping.is_set():
            data, captured = capture.read()
            # Keep the rate the software encoder is sized for: drop what comes faster, before decoding.
            if due is not None and captured < due - period / 4:
                continue
            due = captured + period if due is None or captured - due > period else due + period
            frame = decoder.decode(data)
            if frame is not None:
                track.push(frame, captured)

    def _stop(self, only: FailingTrack | None = None) -> None:
        """End the capture without waiting for it (this runs in the event loop when a call ends)."""
        if only is not None and self._track is not only:
            return
        track, self._track = self._track, None
        self._stopping.set()
        if track is not None:
            track.stop()

    def _join(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=READ_TIMEOUT_S + 1)
            if thread.is_alive():
                raise CameraError("the camera's previous capture did not end; restart the kiosk if this repeats")

    def close(self) -> None:
        self._stop()
        self._join()
