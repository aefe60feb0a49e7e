"""The few V4L2 ioctls the camera backend needs, with ctypes structures laid out as linux/videodev2.h.

No library: neither PyAV's wheels (no v4l2 input) nor a Python V4L2 binding in Debian trixie
can be relied on, and these are a dozen calls. The layouts are those of a 64-bit kernel
(arm64 on the Pi, x86_64 in tests); ``tests/appliance/test_v4l2_capture.py`` checks their sizes.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from fractions import Fraction

from appliance.hardware.pi.v4l2.devices import DeviceInfo, FrameSize, PixelFormat, rates_in_range, sizes_in_range

BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FRMSIZE_TYPE_DISCRETE = 1
FRMIVAL_TYPE_DISCRETE = 1
CTRL_FLAG_DISABLED = 0x0001
# H.264 encoder controls (V4L2_CID_MPEG_VIDEO_*): a UVC 1.5 camera's encoding unit may map them.
CID_H264_I_PERIOD = 0x00990A66
CID_REPEAT_SEQ_HEADER = 0x009909E2
CID_GOP_SIZE = 0x009909CB
CID_PREPEND_SPSPPS_TO_IDR = 0x00990B84
CID_VIDEO_BITRATE = 0x009909CF


def _u32(*names: str) -> list[tuple[str, type]]:
    """Consecutive __u32 fields, as most of videodev2.h's structures are."""
    return [(name, ctypes.c_uint32) for name in names]


def _u32s(name: str, count: int) -> tuple[str, type]:
    return (name, ctypes.c_uint32 * count)


class Capability(ctypes.Structure):
    _fields_ = [("driver", ctypes.c_char * 16), ("card", ctypes.c_char * 32), ("bus_info", ctypes.c_char * 32),
                *_u32("version", "capabilities", "device_caps"), _u32s("reserved", 3)]


class FmtDesc(ctypes.Structure):
    _fields_ = [*_u32("index", "type", "flags"), ("description", ctypes.c_char * 32),
                *_u32("pixelformat", "mbus_code"), _u32s("reserved", 3)]


class FrmSizeEnum(ctypes.Structure):
    # The union: discrete (width, height) or stepwise (min_w, max_w, step_w, min_h, max_h, step_h).
    _fields_ = [*_u32("index", "pixel_format", "type"), _u32s("u", 6), _u32s("reserved", 2)]


class FrmIvalEnum(ctypes.Structure):
    # The union: discrete (num, den) or stepwise (min num/den, max num/den, step num/den).
    _fields_ = [*_u32("index", "pixel_format", "width", "height", "type"), _u32s("u", 6), _u32s("reserved", 2)]


class PixFormat(ctypes.Structure):
    _fields_ = _u32("width", "height", "pixelformat", "field", "bytesperline", "sizeimage", "colorspace", "priv",
                    "flags", "ycbcr_enc", "quantization", "xfer_func")


class _FormatUnion(ctypes.Union):
    # 200 bytes; v4l2_window's pointers make the kernel align it to 8.
    _fields_ = [("pix", PixFormat), ("raw_data", ctypes.c_uint8 * 200), ("_align", ctypes.c_void_p)]


class Format(ctypes.Structure):
    _fields_ = [*_u32("type"), ("fmt", _FormatUnion)]


class CaptureParm(ctypes.Structure):
    # numerator/denominator: seconds per frame
    _fields_ = [*_u32("capability", "capturemode", "numerator", "denominator", "extendedmode", "readbuffers"),
                _u32s("reserved", 4)]


class StreamParm(ctypes.Structure):
    class _Parm(ctypes.Union):
        _fields_ = [("capture", CaptureParm), ("raw_data", ctypes.c_uint8 * 200)]

    _fields_ = [*_u32("type"), ("parm", _Parm)]


class RequestBuffers(ctypes.Structure):
    _fields_ = [*_u32("count", "type", "memory", "capabilities"), ("flags", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 3)]


class TimeVal(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Buffer(ctypes.Structure):
    class _M(ctypes.Union):
        _fields_ = [("offset", ctypes.c_uint32), ("userptr", ctypes.c_ulong), ("planes", ctypes.c_void_p),
                    ("fd", ctypes.c_int32)]

    _fields_ = [*_u32("index", "type", "bytesused", "flags", "field"), ("timestamp", TimeVal),
                ("timecode", ctypes.c_uint8 * 16), *_u32("sequence", "memory"), ("m", _M),
                *_u32("length", "reserved2"), ("request_fd", ctypes.c_int32)]


class QueryCtrl(ctypes.Structure):
    _fields_ = [*_u32("id", "type"), ("name", ctypes.c_char * 32),
                *[(name, ctypes.c_int32) for name in ("minimum", "maximum", "step", "default_value")],
                *_u32("flags"), _u32s("reserved", 2)]


class Control(ctypes.Structure):
    _fields_ = [*_u32("id"), ("value", ctypes.c_int32)]


def _ioc(direction: int, number: int, struct) -> int:
    """The request number as the kernel's _IOR/_IOW/_IOWR('V', number, struct) make it."""
    return (direction << 30) | (ctypes.sizeof(struct) << 16) | (ord("V") << 8) | number


_R, _W, _RW = 2, 1, 3


def _iowr(number: int, struct) -> int:
    """Most requests read and write their structure (_IOWR)."""
    return _ioc(_RW, number, struct)


VIDIOC_QUERYCAP = _ioc(_R, 0, Capability)
VIDIOC_ENUM_FMT = _iowr(2, FmtDesc)
VIDIOC_G_FMT = _iowr(4, Format)
VIDIOC_S_FMT = _iowr(5, Format)
VIDIOC_REQBUFS = _iowr(8, RequestBuffers)
VIDIOC_QUERYBUF = _iowr(9, Buffer)
VIDIOC_QBUF = _iowr(15, Buffer)
VIDIOC_DQBUF = _iowr(17, Buffer)
VIDIOC_STREAMON = _ioc(_W, 18, ctypes.c_int)
VIDIOC_STREAMOFF = _ioc(_W, 19, ctypes.c_int)
VIDIOC_G_PARM = _iowr(21, StreamParm)
VIDIOC_S_PARM = _iowr(22, StreamParm)
VIDIOC_S_CTRL = _iowr(28, Control)
VIDIOC_QUERYCTRL = _iowr(36, QueryCtrl)
VIDIOC_ENUM_FRAMESIZES = _iowr(74, FrmSizeEnum)
VIDIOC_ENUM_FRAMEINTERVALS = _iowr(75, FrmIvalEnum)


def fourcc_code(text: str) -> int:
    return int.from_bytes(text.ljust(4).encode("ascii"), "little")


def fourcc_text(code: int) -> str:
    return code.to_bytes(4, "little").decode("ascii", "replace").rstrip()


def ioctl(fd: int, request: int, arg) -> None:
    """``ioctl(2)`` filling ``arg`` in place; EINTR is retried, any other error raised as ``OSError``."""
    while True:
        try:
            fcntl.ioctl(fd, request, arg, True)
            return
        except InterruptedError:
            continue


def _enumerate(fd: int, request: int, struct) -> list:
    """Every answer of an ENUM_* ioctl: index 0, 1, ... until EINVAL."""
    found = []
    while True:
        struct.index = len(found)
        try:
            ioctl(fd, request, struct)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        found.append(type(struct).from_buffer_copy(struct))


def _rates(fd: int, code: int, width: int, height: int) -> tuple[Fraction, ...]:
    query = FrmIvalEnum(pixel_format=code, width=width, height=height)
    rates: set[Fraction] = set()
    for ival in _enumerate(fd, VIDIOC_ENUM_FRAMEINTERVALS, query):
        # Intervals are seconds per frame; discrete: u[0]/u[1]; stepwise: shortest u[0]/u[1], longest u[2]/u[3].
        shortest = Fraction(ival.u[0] or 1, ival.u[1] or 1)
        if ival.type == FRMIVAL_TYPE_DISCRETE:
            rates.add(1 / shortest)
        else:
            rates.update(rates_in_range(1 / Fraction(ival.u[2] or 1, ival.u[3] or 1), 1 / shortest))
    return tuple(sorted(rates, reverse=True))


def _sizes(fd: int, code: int) -> tuple[FrameSize, ...]:
    sizes = []
    for size in _enumerate(fd, VIDIOC_ENUM_FRAMESIZES, FrmSizeEnum(pixel_format=code)):
        if size.type == FRMSIZE_TYPE_DISCRETE:
            found = [(size.u[0], size.u[1])]
        else:
            min_w, max_w, step_w, min_h, max_h, step_h = size.u
            found = sizes_in_range(min_w, min_h, max_w, max_h, step_w, step_h)
        sizes.extend(FrameSize(w, h, _rates(fd, code, w, h)) for w, h in found)
    return tuple(sizes)


def describe_fd(fd: int, path: str) -> DeviceInfo:
    """What the open device ``fd`` offers (VIDIOC_QUERYCAP, ENUM_FMT, ENUM_FRAMESIZES, ENUM_FRAMEINTERVALS)."""
    cap = Capability()
    ioctl(fd, VIDIOC_QUERYCAP, cap)
    device_caps = cap.device_caps if cap.capabilities & 0x80000000 else cap.capabilities
    formats = []
    if device_caps & 0x1:  # the formats of single-planar video capture; other nodes are skipped anyway
        for desc in _enumerate(fd, VIDIOC_ENUM_FMT, FmtDesc(type=BUF_TYPE_VIDEO_CAPTURE)):
            formats.append(PixelFormat(fourcc_text(desc.pixelformat), desc.description.decode(errors="replace"),
                                       _sizes(fd, desc.pixelformat)))
    return DeviceInfo(path=path, driver=cap.driver.decode(errors="replace"), card=cap.card.decode(errors="replace"),
                      bus_info=cap.bus_info.decode(errors="replace"), device_caps=device_caps, formats=tuple(formats))


def describe(path: str) -> DeviceInfo:
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        return describe_fd(fd, path)
    finally:
        os.close(fd)


def set_format(fd: int, fourcc: str, width: int, height: int) -> PixFormat:
    """VIDIOC_S_FMT; the driver may adjust the size: the returned format says what it took."""
    fmt = Format(type=BUF_TYPE_VIDEO_CAPTURE)
    fmt.fmt.pix.width, fmt.fmt.pix.height, fmt.fmt.pix.pixelformat = width, height, fourcc_code(fourcc)
    fmt.fmt.pix.field = 1  # V4L2_FIELD_NONE: whole frames
    ioctl(fd, VIDIOC_S_FMT, fmt)
    return fmt.fmt.pix


def set_frame_rate(fd: int, fps: Fraction) -> Fraction:
    """VIDIOC_S_PARM with 1/fps per frame; returns the rate the driver set (not every driver can)."""
    parm = StreamParm(type=BUF_TYPE_VIDEO_CAPTURE)
    parm.parm.capture.numerator, parm.parm.capture.denominator = fps.denominator, fps.numerator
    ioctl(fd, VIDIOC_S_PARM, parm)
    set_num, set_den = parm.parm.capture.numerator, parm.parm.capture.denominator
    return Fraction(set_den, set_num) if set_num and set_den else fps


def try_control(fd: int, cid: int, value: int) -> bool:
    """Set control ``cid`` where the device has it (clamped to its range); False where it has not."""
    query = QueryCtrl(id=cid)
    try:
        ioctl(fd, VIDIOC_QUERYCTRL, query)
        if query.flags & CTRL_FLAG_DISABLED:
            return False
        ioctl(fd, VIDIOC_S_CTRL, Control(id=cid, value=max(query.minimum, min(query.maximum, value))))
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOTTY, errno.EACCES, errno.ERANGE):
            return False
        raise
    return True
