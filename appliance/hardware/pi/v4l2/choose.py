"""Which V4L2 camera, and which of its formats, sizes and rates: pure functions over :class:`DeviceInfo`.

The device is chosen by what it can do, never by its index (/dev/video0 today may be the
metadata node or the Pi's codec tomorrow). The format:

* packets (``encoded`` None or True): the camera's own H.264 at the configured size and rate,
  passed through to the clerk without decoding, as the Pi 4 camera does;
* frames (``encoded`` False, or no H.264): raw (YUYV, NV12, YU12) or MJPEG, decoded here and
  encoded by aiortc in software. That costs the Pi's CPU, so unless ``format`` names mjpeg or
  raw (then ``width``/``height``/``fps`` apply as they are), frames come at the configured size
  and rate but at most :data:`SOFTWARE_SIZE` and :data:`SOFTWARE_FPS`. Raw wins over MJPEG where
  it reaches the size and rate: it needs no decoding (see ``bench/usb_camera.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from appliance.hardware.errors import CameraError
from appliance.hardware.pi.v4l2.devices import DeviceInfo, PixelFormat, fps_text, skip_reason
from appliance.hardware.software_video import SOFTWARE_FPS, SOFTWARE_SIZE

FORMATS = ("auto", "h264", "mjpeg", "raw")
# Among raw formats: NV12 and YU12 are what the encoder wants already; YUYV needs converting.
_RAW_ORDER = ("NV12", "YU12", "YUYV")
_KIND_TEXT = {"h264": "H.264", "mjpeg": "MJPEG", "raw": "raw"}


@dataclass(frozen=True)
class Wanted:
    """The ``[hardware.camera]`` settings that choose a format."""

    format: str = "auto"
    width: int = 1280
    height: int = 720
    fps: int = 30

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise CameraError(f"camera format {self.format!r} is unknown: use one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class Mode:
    """One way to capture: pixel format, size and frame rate."""

    fourcc: str
    kind: str  # "h264" | "mjpeg" | "raw"
    width: int
    height: int
    fps: Fraction

    def describe(self) -> str:
        what = "raw " + self.fourcc if self.kind == "raw" else _KIND_TEXT[self.kind]
        return f"{what} {self.width}x{self.height} {fps_text(self.fps)} fps"


@dataclass(frozen=True)
class Choice:
    """The camera, how it captures, and how many frames a second go on (frames are dropped down to
    the software encoder's rate; H.264 packets all go)."""

    device: DeviceInfo
    mode: Mode
    send_fps: Fraction

    @property
    def name(self) -> str:
        """What IT and the installer read, e.g. "USB HD Pro Webcam C920 (H.264 1280x720 30 fps)"."""
        where = "USB" if self.device.is_usb else "V4L2"
        sent = Mode(self.mode.fourcc, self.mode.kind, self.mode.width, self.mode.height, self.send_fps)
        return f"{where} {self.device.card} ({sent.describe()})"


def _kinds(wanted: Wanted, encoded: bool | None) -> list[str]:
    frames = [wanted.format] if wanted.format in ("mjpeg", "raw") else ["raw", "mjpeg"]
    if encoded is True:
        return ["h264"]
    if encoded is False:
        return frames
    return {"auto": ["h264", *frames], "h264": ["h264"]}.get(wanted.format, frames)


def _target(wanted: Wanted, kind: str) -> tuple[int, int, Fraction]:
    if kind == "h264" or wanted.format in ("mjpeg", "raw"):
        return wanted.width, wanted.height, Fraction(wanted.fps)
    # For the software encoder: the configured size and rate, but no more than it can afford.
    fps = Fraction(min(wanted.fps, SOFTWARE_FPS))
    if wanted.width * wanted.height <= SOFTWARE_SIZE[0] * SOFTWARE_SIZE[1]:
        return wanted.width, wanted.height, fps
    return SOFTWARE_SIZE[0], SOFTWARE_SIZE[1], fps


def _fit(fmt: PixelFormat, target: tuple[int, int, Fraction]) -> tuple[tuple, Mode] | None:
    """The format's best size and rate for ``target``, with its sort key (lower is better)."""
    width, height, fps = target
    best = None
    for size in fmt.sizes:
        if not size.rates:
            continue
        enough = [r for r in size.rates if r >= fps]
        rate = min(enough) if enough else max(size.rates)
        # Rate first (a call at 5 fps is worse than one at the wrong size), then the size
        # nearest in area, then the same shape (a 4:3 picture in a 16:9 call gets bars).
        area = abs(math.log((size.width * size.height) / (width * height)))
        shape = abs(size.width / size.height - width / height) > 0.02
        key = (0 if enough else float(fps - rate), round(area, 6), shape, size.width < width)
        if best is None or key < best[0]:
            best = (key, Mode(fmt.fourcc, fmt.kind, size.width, size.height, rate))
    return best


def _best(device: DeviceInfo, wanted: Wanted, encoded: bool | None) -> tuple[tuple, Mode] | None:
    kinds = _kinds(wanted, encoded)
    fits = []
    for fmt in device.formats:
        if fmt.kind not in kinds:
            continue
        fit = _fit(fmt, _target(wanted, fmt.kind))
        if fit is not None:
            raw_rank = _RAW_ORDER.index(fmt.fourcc) if fmt.fourcc in _RAW_ORDER else 0
            key, mode = fit
            # H.264 is wanted whatever its fit; frames trade rate and size before raw vs MJPEG.
            if fmt.kind == "h264":
                fits.append(((0, *key, 0), mode))
            else:
                fits.append(((1, *key[:2], kinds.index(fmt.kind), *key[2:], raw_rank), mode))
    return min(fits, key=lambda f: f[0]) if fits else None


def choose_mode(device: DeviceInfo, wanted: Wanted, *, encoded: bool | None = None) -> Mode | None:
    """The device's best mode for ``wanted``, or None if it has none of the kinds allowed."""
    best = _best(device, wanted, encoded)
    return best[1] if best else None


def choose_camera(devices: list[DeviceInfo], wanted: Wanted, *, encoded: bool | None = None,
                  device: str = "auto") -> Choice:
    """The camera and mode to use; ``device`` "auto" takes the best of ``devices``.

    Raises ``CameraError`` saying what was found and why none fits.
    """
    if device != "auto":
        devices = [d for d in devices if d.path == device]
        if not devices:
            raise CameraError(f"camera device {device} is not there: check the USB cable and the name under "
                              "/dev/v4l/by-id/, or set device = \"auto\"")
    found, choices = [], []
    for info in sorted(devices, key=lambda d: d.path):  # equally good cameras: the same one every boot
        reason = skip_reason(info)
        best = None if reason else _best(info, wanted, encoded)
        if reason is None and best is None:
            reason = f"offers no {' or '.join(_KIND_TEXT[k] for k in _kinds(wanted, encoded))}"
        if reason:
            found.append(f"{info.path} ({info.card}): {reason}")
        else:
            mode = best[1]
            send_fps = mode.fps if mode.kind == "h264" else min(mode.fps, _target(wanted, mode.kind)[2])
            choices.append((best[0], Choice(info, mode, send_fps)))
    if not choices:
        seen = "; ".join(found) if found else "no video devices at all"
        raise CameraError(f"no usable USB camera found ({seen}): plug a UVC webcam into a USB port, check "
                          "`v4l2-ctl --list-devices`, and the camera settings (format)")
    return min(choices, key=lambda c: c[0])[1]
