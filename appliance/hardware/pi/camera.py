"""The Pi camera through picamera2.

Pi 4: the VideoCore's hardware H.264 encoder produces the stream and aiortc
sends it as is (``EncodedVideoTrack``); the Pi 4's CPU could not encode 720p in
software alongside everything else.

Pi 5: there is no hardware encoder (picamera2's ``H264Encoder`` there is a
libav software encoder).  We hand raw frames to aiortc instead, whose own
encoder then answers the receiver's keyframe requests and bitrate estimates,
which a pre-encoded stream cannot.

picamera2 is imported inside functions only: it needs libcamera's Python
bindings, which exist only on Raspberry Pi OS / Debian trixie with
python3-libcamera.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.encoded import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, EncodedVideoTrack, TrackOutput
from appliance.hardware.errors import BackendUnavailable, CameraError
from appliance.hardware.handoff import ThreadFedTrack
from appliance.hardware.software_video import SOFTWARE_FPS, SOFTWARE_SIZE

log = logging.getLogger(__name__)

HARDWARE_ENCODER_DEVICE = "/dev/video11"  # bcm2835-codec encode node, Pi 4 and earlier only
PICAMERA2_HINT = ("the Pi camera needs picamera2 with libcamera's Python bindings: install python3-picamera2 / "
                  "run on Raspberry Pi OS or Debian trixie with python3-libcamera")


def picamera2_module():
    """Import picamera2, or say what to install."""
    try:
        import picamera2
    except ImportError as exc:  # picamera2 itself, or libcamera under it
        raise BackendUnavailable(f"{PICAMERA2_HINT} ({exc})") from exc
    return picamera2


def has_hardware_encoder() -> bool:
    """True on a Pi 4 (VideoCore IV ISP with the V4L2 H.264 encoder), false on a Pi 5."""
    from picamera2.platform import Platform, get_platform
    return get_platform() == Platform.VC4 and os.path.exists(HARDWARE_ENCODER_DEVICE)


def frames_mode(width: int, height: int, fps: int) -> tuple[tuple[int, int], int]:
    """The configured size fitted into ``SOFTWARE_SIZE`` (aspect kept, even), at most ``SOFTWARE_FPS``."""
    scale = min(1.0, SOFTWARE_SIZE[0] / width, SOFTWARE_SIZE[1] / height)
    return (round(width * scale / 2) * 2, round(height * scale / 2) * 2), min(fps, SOFTWARE_FPS)


def yuv420_to_frame(array: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """Turn picamera2's YUV420 array ((height * 3 / 2) x stride) into a yuv420p frame.

    The ISP pads rows to its stride; the chroma planes then have stride / 2
    per row, so unpadded widths must be cut plane by plane.
    """
    stride = array.shape[1]
    if stride == width:
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="yuv420p")
    flat = np.ascontiguousarray(array).reshape(-1)
    y = flat[:height * stride].reshape(height, stride)[:, :width]
    chroma = flat[height * stride:].reshape(height, stride // 2)  # U rows then V rows
    u = chroma[:height // 2, :width // 2]
    v = chroma[height // 2:, :width // 2]
    packed = np.concatenate((y.reshape(-1), u.reshape(-1), v.reshape(-1)))
    return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")


class LatestFrameTrack(ThreadFedTrack):
    """Video track fed by a capture thread; keeps only the newest pictures.

    A video call wants the current picture, not a backlog: if aiortc's encoder
    falls behind, older frames are dropped.
    """

    kind = "video"

    def __init__(self, on_stop=None, keep: int = 2) -> None:
        super().__init__(keep, on_stop)
        self._start: float | None = None

    def push(self, frame: av.VideoFrame, captured_at: float) -> None:
        self._put((captured_at, frame))

    async def recv(self) -> av.VideoFrame:
        captured_at, frame = await self._get()
        if self._start is None:
            self._start = captured_at
        frame.pts = round((captured_at - self._start) * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        return frame


# VIDIOC_S_CTRL (_IOWR('V', 28, struct v4l2_control)) with V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME
# (V4L2_CID_CODEC_BASE + 229): the bcm2835 codec makes its next picture an IDR with SPS/PPS.
VIDIOC_S_CTRL = 0xC008561C
V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME = 0x009909E5
# V4L2_CID_MPEG_VIDEO_BITRATE (V4L2_CID_CODEC_BASE + 207): the bcm2835 codec passes a new value on to the
# running encoder (MMAL_PARAMETER_VIDEO_BIT_RATE), so the bitrate changes without a restart of the stream.
V4L2_CID_MPEG_VIDEO_BITRATE = 0x009909CF


def force_key_frame(encoder) -> None:
    """Ask picamera2's running V4L2 H.264 encoder for an IDR now (a peer joined, or lost the picture).

    picamera2 has no call for it; its encoder keeps the codec device open as ``vd``."""
    import fcntl
    import struct
    device = getattr(encoder, "vd", None)
    if device is None:
        raise CameraError("picamera2's H.264 encoder keeps no codec device open; key frames come every second")
    fcntl.ioctl(device, VIDIOC_S_CTRL, struct.pack("<Ii", V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1))


def set_bitrate(encoder, bitrate: int) -> None:
    """Set the running V4L2 H.264 encoder's bitrate (bit/s): the call's upload budget shares the uplink
    between the peers (appliance/call/upload.py). picamera2 sets it only when the encoder starts."""
    import fcntl
    import struct
    device = getattr(encoder, "vd", None)
    if device is None:
        raise CameraError("picamera2's H.264 encoder keeps no codec device open; its bitrate stays as started")
    fcntl.ioctl(device, VIDIOC_S_CTRL, struct.pack("<Ii", V4L2_CID_MPEG_VIDEO_BITRATE, int(bitrate)))


class PiCamera:
    """The Pi camera (see :class:`appliance.hardware.interfaces.Camera`).

    Its preference (``track()``) is decided at start-up from the platform: H.264 from the
    Pi 4's hardware encoder. Should the encoder nevertheless fail to start, ``track()``
    falls back to raw frames; ``track(encoded=False)`` asks for frames (the clerk's
    browser cannot take H.264). ``encoded`` tells what the last track yields.

    Frames on a Pi 4 are for its software encoder, so the camera is configured for them at
    most ``SOFTWARE_SIZE`` and ``SOFTWARE_FPS`` (640x360 at 15 fps): the ISP scales for free
    what the CPU would otherwise copy at full size and scale down frame by frame.
    """

    def __init__(self, width: int = 1280, height: int = 720, fps: int = 30, bitrate: int = 1_500_000, *,
                 camera_num: int = 0, hardware_encoder: bool | None = None) -> None:
        Picamera2 = picamera2_module().Picamera2
        cameras = Picamera2.global_camera_info()
        if len(cameras) <= camera_num:
            raise CameraError(f"no camera number {camera_num} connected (libcamera sees {len(cameras)}); "
                              "check the ribbon cable and camera_auto_detect in config.txt")
        self.model = cameras[camera_num].get("Model", "unknown")
        self.name = f"Pi camera {self.model}"
        self.width, self.height, self.fps, self.bitrate = width, height, fps, bitrate
        self.hardware_encoder = has_hardware_encoder() if hardware_encoder is None else hardware_encoder
        self.encoded = self.hardware_encoder
        # (size, fps) of the frames path; on a Pi 5 (no encoder) the configured ones, as for any camera
        self.frames_mode = frames_mode(width, height, fps) if self.hardware_encoder else ((width, height), fps)
        self._configured: tuple | None = None
        try:
            self._cam = Picamera2(camera_num)
            self._configure(((width, height), fps) if self.encoded else self.frames_mode)
        except Exception as exc:
            raise CameraError(f"cannot open camera {self.model}: {exc}") from exc
        log.info("camera %s at %dx%d@%d, %s", self.model, width, height, fps,
                 "hardware H.264 passthrough" if self.encoded else "raw frames for aiortc to encode")
        self._track: MediaStreamTrack | None = None
        self._running: str | None = None  # "recording" | "capturing"
        self._stop_capture_thread = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, *, encoded: bool | None = None) -> MediaStreamTrack:
        self._stop()
        if encoded and not self.hardware_encoder:
            raise CameraError("this camera has no hardware H.264 encoder (a Pi 4 has one, a Pi 5 not); "
                              "ask for frames instead")
        if encoded is not False and self.hardware_encoder:
            try:
                track = self._start_encoded()
                self.encoded = True
                return track
            except Exception as exc:
                self._stop()
                if encoded:
                    raise CameraError(f"the hardware H.264 encoder did not start: {exc}") from exc
                log.warning("hardware H.264 encoder failed (%s); falling back to raw frames", exc)
        self.encoded = False
        return self._start_frames()

    def _configure(self, mode: tuple[tuple[int, int], int]) -> None:
        """The camera's output at ``((width, height), fps)``; only while it is stopped."""
        if mode != self._configured:
            (width, height), fps = mode
            self._cam.configure(self._cam.create_video_configuration(
                main={"size": (width, height), "format": "YUV420"}, controls={"FrameRate": fps}))
            self._configured = mode

    def _start_encoded(self) -> EncodedVideoTrack:
        from picamera2.encoders.h264_encoder import H264Encoder  # the V4L2 one, not the Pi 5 alias
        from picamera2.outputs import Output

        self._configure(((self.width, self.height), self.fps))

        track = EncodedVideoTrack(on_stop=self._stop)
        sink = TrackOutput(track)

        class ForwardingOutput(Output):
            def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
                sink.outputframe(frame, keyframe, timestamp, packet, audio)

        # repeat + iperiod: SPS/PPS and an IDR every second, since aiortc cannot
        # forward the receiver's keyframe requests to a pre-encoded stream.
        encoder = H264Encoder(bitrate=self.bitrate, repeat=True, iperiod=self.fps, profile="baseline")
        self._track, self._running = track, "recording"
        self._cam.start_recording(encoder, ForwardingOutput())
        track.on_keyframe_request = lambda: force_key_frame(encoder)
        track.on_bitrate_request = lambda bitrate: set_bitrate(encoder, bitrate)
        track.max_bitrate = track.bitrate = self.bitrate
        return track

    def _start_frames(self) -> LatestFrameTrack:
        track = LatestFrameTrack(on_stop=self._stop)
        self._track, self._running = track, "capturing"
        self._stop_capture_thread = stop = threading.Event()
        try:
            self._configure(self.frames_mode)
            self._cam.start()
        except Exception as exc:
            raise CameraError(f"camera {self.model} did not start: {exc}") from exc
        self._thread = threading.Thread(target=self._capture, args=(track, stop, self.frames_mode[0]),
                                        name="camera-capture", daemon=True)
        self._thread.start()
        return track

    def _capture(self, track: LatestFrameTrack, stop: threading.Event, size: tuple[int, int]) -> None:
        try:
            while not stop.is_set():
                array = self._cam.capture_array("main")  # blocks until the next frame: paced by the sensor
                track.push(yuv420_to_frame(array, *size), time.monotonic())
        except Exception:
            if not stop.is_set():
                log.exception("camera capture failed")
                track.stop_from_thread()

    def _stop(self) -> None:
        # Runs in the loop when a call's track ends; picamera2's stop takes a
        # frame or two, which is acceptable at hang-up.
        track, running = self._track, self._running
        self._track, self._running = None, None
        self._stop_capture_thread.set()
        if running == "recording":
            self._cam.stop_recording()
        elif running == "capturing":
            self._cam.stop()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        if track is not None:
            track.stop()

    def close(self) -> None:
        self._stop()
        self._cam.close()
