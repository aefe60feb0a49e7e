"""Synthetic camera: colour bars, a moving block and a machine-readable clock (or a QR code held up).

Used instead of the Pi camera in tests and the demo.  The clock stamp lets an
end-to-end test measure glass-to-glass latency and spot frozen video: the
receiver decodes the picture and calls :func:`read_clock` on it.
"""

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.errors import DeviceUsageError
from appliance.hardware.fake.held_code import HeldCode

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

# Clock code: 3 rows x 16 cells, anchored at the top-left corner so its position
# depends on the width only (a packed yuv420p array then reads like a luma plane).
# Cells are 16px multiples on a 16px grid, i.e. whole flat macroblocks, which
# VP8/H.264 reproduce almost exactly even at low bitrates.
CODE_ROWS, CODE_COLS = 3, 16
SYNC_BITS = (1, 0, 1, 1, 0, 0, 1, 0)
CHECK_SALT = 0xA5  # so an all-zero payload does not give an all-zero checksum
BLACK, WHITE = 16, 235  # limited-range luma, what the encoders expect
_LOW, _HIGH = 96, 160  # anything in between is "not our pattern"

_BARS_RGB = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0),
             (191, 0, 191), (191, 0, 0), (0, 0, 191)]  # 75 % SMPTE-ish bars


def _cell_size(width: int) -> int:
    return 16 * max(1, width // 640)


def _bits_for(ms: int) -> list:
    data = [(ms >> (31 - i)) & 1 for i in range(32)]
    check = CHECK_SALT
    for shift in (24, 16, 8, 0):
        check ^= (ms >> shift) & 0xFF
    return list(SYNC_BITS) + data + [(check >> (7 - i)) & 1 for i in range(8)]


def _luma(image) -> np.ndarray:
    if isinstance(image, av.VideoFrame):
        return image.reformat(format="gray").to_ndarray()
    arr = np.asarray(image)
    if arr.ndim == 3:  # RGB(A), full range; thresholds work for both ranges
        return arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    return arr


def read_clock(image: av.VideoFrame | np.ndarray) -> int | None:
    """Decode the millisecond stamp (mod 2**32) drawn by :class:`TestPatternTrack`.

    Accepts an ``av.VideoFrame``, a luma/gray array, a packed yuv420p array
    (``frame.to_ndarray()``) or an RGB array.  Returns None if not found.
    """
    luma = _luma(image)
    if luma.ndim != 2:
        return None
    c = _cell_size(luma.shape[1])
    if luma.shape[0] < (CODE_ROWS + 1) * c or luma.shape[1] < (CODE_COLS + 1) * c:
        return None
    region = luma[c:c + CODE_ROWS * c, c:c + CODE_COLS * c].astype(np.float32)
    m = c // 4  # skip cell edges, where ringing and chroma bleed live
    cells = region.reshape(CODE_ROWS, c, CODE_COLS, c)[:, m:c - m, :, m:c - m]
    levels = cells.mean(axis=(1, 3)).ravel()
    if np.any((levels > _LOW) & (levels < _HIGH)):
        return None
    bits = [int(v >= _HIGH) for v in levels]
    if tuple(bits[:8]) != SYNC_BITS:
        return None
    ms = int("".join(map(str, bits[8:40])), 2)
    return ms if bits == _bits_for(ms) else None


def read_clock_crop(luma: bytes, crop_width: int, crop_height: int, frame_width: int) -> int | None:
    """:func:`read_clock` of the top-left corner of a picture only (``crop_width`` x
    ``crop_height`` luma bytes), as a page grabs it: the stamp sits in that corner, and its
    cell size follows the whole picture's width, hence ``frame_width``."""
    crop = np.frombuffer(luma, np.uint8).reshape(crop_height, crop_width)
    full = np.zeros((crop_height, frame_width), np.uint8)
    full[:, :crop_width] = crop
    return read_clock(full)


def _rgb_to_yuv(r, g, b):
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def _seven_segment(c: int) -> list:
    h, w, t = 3 * c, c * 3 // 2, max(2, c // 4)
    mid = (h - t) // 2
    segs = {  # a..g as (y0, y1, x0, x1)
        "a": (0, t, 0, w), "b": (0, mid + t, w - t, w), "c": (mid, h, w - t, w),
        "d": (h - t, h, 0, w), "e": (mid, h, 0, t), "f": (0, mid + t, 0, t),
        "g": (mid, mid + t, 0, w)}
    glyphs = []
    for on in ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg",
               "abc", "abcdefg", "abcdfg"):
        g = np.full((h, w), BLACK, np.uint8)
        for s in on:
            y0, y1, x0, x1 = segs[s]
            g[y0:y1, x0:x1] = WHITE
        glyphs.append(g)
    return glyphs


def _planes(buf: np.ndarray, w: int, h: int):
    """Y, U, V views into one packed yuv420p buffer."""
    n = w * h
    return (buf[:n].reshape(h, w), buf[n:n + n // 4].reshape(h // 2, w // 2),
            buf[n + n // 4:].reshape(h // 2, w // 2))


class TestPatternTrack(MediaStreamTrack):
    """Video track producing a moving test pattern with a readable clock."""

    kind = "video"
    __test__ = False  # not a pytest test class despite the name

    GRAINS = 8  # noise pictures taken in turn: an encoder finds none of them in the frames it keeps to refer to

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30,
                 clock: Callable[[], float] = time.time, held: HeldCode | None = None, grain: int = 0) -> None:
        """``held``: while it holds a QR code, the picture shows that card instead of the bars
        (the clock stays on top). ``grain``: the bars carry changing noise of up to that many luma steps,
        like a camera's sensor, so that an encoder needs its whole bitrate (the plain pattern takes a tenth)."""
        super().__init__()
        self._held = held
        self._showing_held = False
        c = _cell_size(width)
        if width % 2 or height % 2 or width < (CODE_COLS + 2) * c or height < 9 * c:
            raise DeviceUsageError(f"unsupported test pattern size {width}x{height}")
        self.width, self.height, self.fps, self._clock = width, height, fps, clock
        self.last_clock_ms: int | None = None
        self._c, self._band = c, (CODE_ROWS + 2) * c
        self._glyphs = _seven_segment(c)
        self._start: float | None = None
        self._index = 0
        self._prev_rect = None

        self._bg = np.empty(width * height * 3 // 2, np.uint8)
        y, u, v = _planes(self._bg, width, height)
        y[:], u[:], v[:] = 128, 128, 128  # grey band behind the clock
        for i, rgb in enumerate(_BARS_RGB):
            x0, x1 = i * width // 7 // 2 * 2, (i + 1) * width // 7 // 2 * 2
            if i == len(_BARS_RGB) - 1:
                x1 = width
            yy, uu, vv = _rgb_to_yuv(*rgb)
            y[self._band:, x0:x1] = yy
            u[self._band // 2:, x0 // 2:x1 // 2] = uu
            v[self._band // 2:, x0 // 2:x1 // 2] = vv
        self._buf = self._bg.copy()
        self._grains: list[np.ndarray] = []
        if grain:
            rng = np.random.default_rng(width * height)
            bars = y[self._band:].astype(np.int16)
            self._grains = [(bars + rng.integers(-grain, grain + 1, bars.shape)).clip(0, 255).astype(np.uint8)
                            for _ in range(self.GRAINS)]

    async def _next_pts(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        # pts from the frame index (not accumulated) so non-integer
        # 90000/fps steps do not drift; monotonic so NTP steps do not stall us.
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
        pts = round(self._index * VIDEO_CLOCK_RATE / self.fps)
        wait = self._start + pts / VIDEO_CLOCK_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return pts

    def _draw_block(self) -> None:
        y, u, v = _planes(self._buf, self.width, self.height)
        by, bu, bv = _planes(self._bg, self.width, self.height)
        if self._prev_rect:
            r0, r1, c0, c1 = self._prev_rect
            y[r0:r1, c0:c1] = by[r0:r1, c0:c1]
            u[r0 // 2:r1 // 2, c0 // 2:c1 // 2] = bu[r0 // 2:r1 // 2, c0 // 2:c1 // 2]
            v[r0 // 2:r1 // 2, c0 // 2:c1 // 2] = bv[r0 // 2:r1 // 2, c0 // 2:c1 // 2]
        size = 4 * self._c
        span = self.width - size
        pos = (self._index * max(2, span // max(1, round(self.fps)))) % (2 * span)
        x = (pos if pos <= span else 2 * span - pos) // 2 * 2  # bounce, chroma-aligned
        r0 = (self._band + self.height - size) // 2 // 2 * 2
        y[r0:r0 + size, x:x + size] = BLACK
        m = size // 4
        y[r0 + m:r0 + size - m, x + m:x + size - m] = WHITE
        u[r0 // 2:(r0 + size) // 2, x // 2:(x + size) // 2] = 128
        v[r0 // 2:(r0 + size) // 2, x // 2:(x + size) // 2] = 128
        self._prev_rect = (r0, r0 + size, x, x + size)

    def _draw_clock(self, now: float) -> None:
        y = _planes(self._buf, self.width, self.height)[0]
        c = self._c
        ms_total = int(now * 1000)
        self.last_clock_ms = ms_total % 2**32
        bits = np.array(_bits_for(self.last_clock_ms), np.uint8).reshape(CODE_ROWS, CODE_COLS)
        cells = np.where(bits, WHITE, BLACK).astype(np.uint8)
        y[c:c + CODE_ROWS * c, c:c + CODE_COLS * c] = np.kron(cells, np.ones((c, c), np.uint8))
        # Human-readable UTC time of day, HH MM SS mmm, clipped to the width.
        tod = ms_total % 86_400_000
        text = f"{tod // 3_600_000:02d}{tod // 60_000 % 60:02d}{tod // 1000 % 60:02d}{tod % 1000:03d}"
        x = (CODE_COLS + 2) * c
        for i, ch in enumerate(text):
            g = self._glyphs[int(ch)]
            if x + g.shape[1] > self.width:
                break
            y[c:c + g.shape[0], x:x + g.shape[1]] = g
            x += g.shape[1] + c // 2 + (c if i in (1, 3, 5) else 0)

    def _draw_held(self, picture: np.ndarray) -> None:
        y, u, v = _planes(self._buf, self.width, self.height)
        y[self._band:] = picture[self._band:]
        u[self._band // 2:], v[self._band // 2:] = 128, 128
        self._showing_held = True

    async def recv(self) -> av.VideoFrame:
        pts = await self._next_pts()
        picture = self._held.picture(self.width, self.height) if self._held is not None else None
        if picture is not None:
            self._draw_held(picture)
        else:
            if self._showing_held:  # the card was taken away: the bars again
                self._buf[:] = self._bg
                self._prev_rect, self._showing_held = None, False
            if self._grains:
                _planes(self._buf, self.width, self.height)[0][self._band:] = self._grains[self._index % self.GRAINS]
                self._prev_rect = None  # the whole picture is new
            self._draw_block()
        self._draw_clock(self._clock())
        frame = av.VideoFrame.from_ndarray(
            self._buf.reshape(self.height * 3 // 2, self.width), format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame
