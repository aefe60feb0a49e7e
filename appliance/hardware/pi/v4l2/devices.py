"""What a V4L2 device offers: its identity, capabilities, pixel formats, frame sizes and rates.

The same description comes from the kernel (``ioctls.describe``) or from the text
``v4l2-ctl --info --list-formats-ext`` prints (:func:`parse_listing`), so the choice of
device and format is tested on recordings of real webcams (tests/appliance/data/v4l2/).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from appliance.hardware.errors import DeviceUsageError

# Device capability bits (linux/videodev2.h, V4L2_CAP_*).
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_META_CAPTURE = 0x00800000
CAP_STREAMING = 0x04000000

# Pixel formats the camera backend can use, by the kind of work they cost the Pi: "h264" is
# passed through, "mjpeg" is decoded, "raw" only converted.
FORMAT_KINDS = {"H264": "h264", "MJPG": "mjpeg", "JPEG": "mjpeg", "YUYV": "raw", "NV12": "raw", "YU12": "raw"}

# Drivers of the Pi's own video nodes: its codec, ISP and camera receivers are V4L2 devices
# too, but not USB cameras (the Pi camera is picamera2's, through libcamera).
PI_PIPELINE_DRIVERS = frozenset({"bcm2835-codec", "bcm2835-isp", "bcm2835-v4l2", "rpivid", "pispbe", "rp1-cfe",
                                 "unicam", "bcm2835-unicam", "hevc-rpi"})

# Stepwise ranges are offered as these sizes and rates: the ones a call would ask for.
COMMON_SIZES = ((320, 180), (320, 240), (640, 360), (640, 480), (800, 600), (960, 540), (1280, 720),
                (1920, 1080))
COMMON_RATES = (5, 10, 15, 20, 24, 25, 30, 60)


@dataclass(frozen=True)
class FrameSize:
    width: int
    height: int
    rates: tuple[Fraction, ...]  # frames per second offered at this size, highest first


@dataclass(frozen=True)
class PixelFormat:
    fourcc: str  # "H264", "MJPG", "YUYV", ... (V4L2's four characters, trailing spaces dropped)
    description: str
    sizes: tuple[FrameSize, ...]

    @property
    def kind(self) -> str | None:
        return FORMAT_KINDS.get(self.fourcc)


@dataclass(frozen=True)
class DeviceInfo:
    path: str
    driver: str
    card: str
    bus_info: str
    device_caps: int
    formats: tuple[PixelFormat, ...] = field(default=())

    @property
    def is_usb(self) -> bool:
        return self.bus_info.startswith("usb-")


def skip_reason(device: DeviceInfo) -> str | None:
    """Why ``device`` is not a camera the USB backend can use, or None if it is one."""
    caps = device.device_caps
    if caps & (CAP_VIDEO_M2M | CAP_VIDEO_M2M_MPLANE):
        return "a video codec or converter (memory to memory), not a camera"
    if device.driver in PI_PIPELINE_DRIVERS:
        return "the Raspberry Pi's own camera or codec pipeline (the Pi camera is source = \"picamera\")"
    if caps & CAP_META_CAPTURE and not caps & CAP_VIDEO_CAPTURE:
        return "the metadata node of a camera, not its picture"
    if not caps & CAP_VIDEO_CAPTURE:
        what = "multi-planar capture, not supported" if caps & CAP_VIDEO_CAPTURE_MPLANE else "no video capture"
        return what
    if not caps & CAP_STREAMING:
        return "no streaming I/O"
    if not any(f.kind for f in device.formats):
        offered = ", ".join(f.fourcc for f in device.formats) or "none"
        return f"none of its pixel formats is H.264, MJPEG, YUYV, NV12 or YU12 (it offers {offered})"
    return None


def fps_text(rate: Fraction) -> str:
    return f"{float(rate):g}"


# -- v4l2-ctl text ------------------------------------------------------------------

_INFO = re.compile(r"^\s*(Driver name|Card type|Bus info|Device Caps)\s*:\s*(.*?)\s*$")
_FORMAT = re.compile(r"^\s*\[\d+\]: '(.{1,4})' \((.*)\)\s*$")
_DISCRETE_SIZE = re.compile(r"^\s*Size: Discrete (\d+)x(\d+)\s*$")
_RANGE_SIZE = re.compile(r"^\s*Size: (?:Stepwise|Continuous) (\d+)x(\d+) - (\d+)x(\d+) with step (\d+)/(\d+)")
_DISCRETE_RATE = re.compile(r"^\s*Interval: Discrete [\d.]+s \(([\d.]+) fps\)")
_RANGE_RATE = re.compile(r"^\s*Interval: (?:Stepwise|Continuous) .*\(([\d.]+)-([\d.]+) fps\)")


def _rate(text: str) -> Fraction:
    return Fraction(text).limit_denominator(1001)


def sizes_in_range(min_w: int, min_h: int, max_w: int, max_h: int, step_w: int, step_h: int) -> list[tuple[int, int]]:
    """The common sizes a stepwise range allows, and its largest size."""
    found = [(w, h) for w, h in COMMON_SIZES if min_w <= w <= max_w and min_h <= h <= max_h
             and (w - min_w) % max(step_w, 1) == 0 and (h - min_h) % max(step_h, 1) == 0]
    return sorted({*found, (max_w, max_h)})


def rates_in_range(low: Fraction, high: Fraction) -> tuple[Fraction, ...]:
    return tuple(sorted({high, *(Fraction(r) for r in COMMON_RATES if low <= r <= high)}, reverse=True))


def parse_listing(text: str, path: str) -> DeviceInfo:
    """The description in ``v4l2-ctl -d PATH --info --list-formats-ext`` output.

    Raises ``DeviceUsageError`` (a ``ValueError``) naming the line it does not understand, so a recording that is not
    what it claims to be fails loudly.
    """
    info: dict[str, str] = {}
    formats: list[PixelFormat] = []
    fourcc = description = None
    sizes: list[FrameSize] = []
    size: list[tuple[int, int]] = []  # one discrete size, or the sizes offered from a range
    rates: list[Fraction] = []

    def end_size():
        nonlocal size, rates
        for w, h in size:
            sizes.append(FrameSize(w, h, tuple(sorted(set(rates), reverse=True))))
        size, rates = [], []

    def end_format():
        nonlocal fourcc, sizes
        end_size()
        if fourcc is not None:
            formats.append(PixelFormat(fourcc, description, tuple(sizes)))
        fourcc, sizes = None, []

    for number, line in enumerate(text.splitlines(), 1):
        if m := _INFO.match(line):
            info.setdefault(m.group(1), m.group(2))
        elif m := _FORMAT.match(line):
            end_format()
            fourcc, description = m.group(1).rstrip(), m.group(2)
        elif m := _DISCRETE_SIZE.match(line):
            end_size()
            size = [(int(m.group(1)), int(m.group(2)))]
        elif m := _RANGE_SIZE.match(line):
            end_size()
            size = sizes_in_range(*(int(g) for g in m.groups()))  # the rates that follow apply to each
        elif m := _DISCRETE_RATE.match(line):
            rates.append(_rate(m.group(1)))
        elif m := _RANGE_RATE.match(line):
            rates.extend(rates_in_range(_rate(m.group(1)), _rate(m.group(2))))
        elif line.strip().startswith(("Size:", "Interval:", "[")):
            raise DeviceUsageError(f"line {number} of the listing of {path} is not understood: {line.strip()!r}")
    end_format()
    missing = [k for k in ("Driver name", "Card type", "Device Caps") if k not in info]
    if missing:
        raise DeviceUsageError(f"the listing of {path} has no {', '.join(missing)}: record it with "
                         "v4l2-ctl -d DEVICE --info --list-formats-ext")
    return DeviceInfo(path=path, driver=info["Driver name"], card=info["Card type"], bus_info=info.get("Bus info", ""),
                      device_caps=int(info["Device Caps"], 16), formats=tuple(formats))
